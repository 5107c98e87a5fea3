"""Drill stand-in for users and a credential-stuffing flood on a login service (auth-failures): stdlib only.

Each client sends real HTTP requests to --url from its own source address (any 127.0.0.0/8 address on
Linux), each on a new connection:

- ``--attacker 127.0.0.2=8``: 8 logins a second, cycling through --target names, each with a fresh random
  password;
- ``--user 127.0.0.21=alice``: once a second, alice logs in with her password (from the --credentials file,
  lines NAME:PASSWORD, so no password is on a command line) and reads /api/me with the token.

Every --report seconds one line per client on stdout (its journal): requests by kind and status
(0 = no answer). Runs until SIGTERM.
"""

from __future__ import annotations

import argparse
import http.client
import itertools
import json
import secrets
import signal
import sys
import threading
from collections import Counter
from urllib.parse import urlsplit


class Client:
    def __init__(self, addr: str, host: str, port: int) -> None:
        self.addr, self.host, self.port = addr, host, port
        self.counts: Counter[str] = Counter()
        self.lock = threading.Lock()

    def request(self, kind: str, method: str, path: str, body: object = None, token: str = "") -> str:
        """One request on a new connection; counts ``kind:status`` and returns the answer's body."""
        status, text = 0, ""
        conn = http.client.HTTPConnection(self.host, self.port, timeout=5, source_address=(self.addr, 0))
        headers = {"User-Agent": f"irx-drill-auth ({self.addr})", "Content-Type": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        try:
            conn.request(method, path, body=None if body is None else json.dumps(body), headers=headers)
            response = conn.getresponse()
            text, status = response.read().decode(errors="replace"), response.status
        except OSError:
            pass
        finally:
            conn.close()
        with self.lock:
            self.counts[f"{kind}:{status}"] += 1
        return text if status == 200 else ""


def attacker(client: Client, rate: float, targets: list[str], stop: threading.Event) -> None:
    for name in itertools.cycle(targets):
        client.request("login", "POST", "/login", {"user": name, "password": secrets.token_hex(6)})
        if stop.wait(1.0 / rate):
            return


def user(client: Client, name: str, password: str, stop: threading.Event) -> None:
    while not stop.is_set():
        answer = client.request("login", "POST", "/login", {"user": name, "password": password})
        token = json.loads(answer).get("token", "") if answer else ""
        client.request("me", "GET", "/api/me", token=token)
        stop.wait(1.0)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True, help="base URL, e.g. http://127.0.0.1:8089")
    parser.add_argument("--attacker", action="append", default=[], help="ADDR=LOGINS_PER_SECOND (repeatable)")
    parser.add_argument("--target", action="append", default=[], help="user name the attackers try (repeatable)")
    parser.add_argument("--user", action="append", default=[], help="ADDR=NAME (repeatable)")
    parser.add_argument("--credentials", required=True, help="file of NAME:PASSWORD lines")
    parser.add_argument("--report", type=float, default=5)
    args = parser.parse_args()
    url = urlsplit(args.url)
    host, port = url.hostname or "127.0.0.1", url.port or 80
    with open(args.credentials) as f:
        passwords = dict(line.strip().split(":", 1) for line in f if ":" in line)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    clients: list[Client] = []
    threads = []
    for spec in args.attacker:
        addr, _, rate = spec.partition("=")
        clients.append(Client(addr, host, port))
        threads.append(threading.Thread(target=attacker, args=(clients[-1], float(rate), args.target, stop)))
    for spec in args.user:
        addr, _, name = spec.partition("=")
        clients.append(Client(addr, host, port))
        threads.append(threading.Thread(target=user, args=(clients[-1], name, passwords[name], stop)))
    print(f"auth-traffic: {len(args.attacker)} attackers, {len(args.user)} users -> {args.url}", flush=True)
    for thread in threads:
        thread.daemon = True
        thread.start()
    while not stop.wait(args.report):
        for client in clients:
            with client.lock:
                counts = " ".join(f"{k}:{n}" for k, n in sorted(client.counts.items()))
            print(f"auth-traffic: {client.addr} {counts}", flush=True)
    print("auth-traffic: SIGTERM received, stopping", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

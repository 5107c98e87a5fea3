"""Drill stand-in for users and attackers (high-error-rate, ddos-traffic-spike): stdlib only.

Sends real HTTP GETs to --url, each client from its own source address (any 127.0.0.0/8 address works
on Linux without configuration) at its own rate: ``--client 127.0.0.2=25`` is 25 requests a second
from 127.0.0.2. Each request uses a new connection (so a reloaded nginx judges every one), cycling
through the --path values. Every --report seconds one line per client on stdout (its journal):
requests and answers by status (0 = no answer). Runs until SIGTERM.
"""

from __future__ import annotations

import argparse
import http.client
import itertools
import signal
import sys
import threading
import time
from collections import Counter
from urllib.parse import urlsplit


def client(
    addr: str,
    rate: float,
    host: str,
    port: int,
    paths: list[str],
    counts: Counter,
    lock: threading.Lock,
    stop: threading.Event,
) -> None:
    interval = 1.0 / rate
    due = time.monotonic()
    for path in itertools.cycle(paths):
        if stop.is_set():
            return
        status = 0
        conn = http.client.HTTPConnection(host, port, timeout=3, source_address=(addr, 0))
        try:
            conn.request("GET", path, headers={"User-Agent": f"irx-drill-traffic ({addr})"})
            response = conn.getresponse()
            response.read()
            status = response.status
        except OSError:
            pass
        finally:
            conn.close()
        with lock:
            counts[status] += 1
        due += interval
        delay = due - time.monotonic()
        if delay > 0:
            stop.wait(delay)
        elif delay < -1:
            due = time.monotonic()  # fell behind (a slow answer): do not burst to catch up


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True, help="base URL, e.g. http://127.0.0.1:8089")
    parser.add_argument("--path", action="append", default=[], help="request path (repeatable)")
    parser.add_argument("--client", action="append", required=True, help="ADDR=REQUESTS_PER_SECOND (repeatable)")
    parser.add_argument("--report", type=float, default=5, help="seconds between journal lines")
    args = parser.parse_args()
    url = urlsplit(args.url)
    host, port = url.hostname or "127.0.0.1", url.port or 80
    paths = args.path or ["/"]
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    lock = threading.Lock()
    clients: dict[str, Counter] = {}
    threads = []
    for spec in args.client:
        addr, _, rate = spec.partition("=")
        clients[addr] = Counter()
        threads.append(
            threading.Thread(
                target=client, daemon=True, args=(addr, float(rate or 1), host, port, paths, clients[addr], lock, stop)
            )
        )
    print(f"site-traffic: {len(clients)} clients -> {args.url} {' '.join(paths)}", flush=True)
    for thread in threads:
        thread.start()
    while not stop.wait(args.report):
        with lock:
            for addr, counts in clients.items():
                statuses = " ".join(f"{s}:{n}" for s, n in sorted(counts.items()))
                print(f"site-traffic: {addr} {sum(counts.values())} requests ({statuses})", flush=True)
    print("site-traffic: SIGTERM received, stopping", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

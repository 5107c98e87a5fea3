"""Drill stand-in for an application with a Redis cache (redis-cache-failure).

Serves GET /health on 127.0.0.1:--port. Each request uses the cache (SET then GET of one key, over a
fresh connection: the venv has no redis package, so a tiny RESP client); when that fails the application
keeps working without the cache, degraded, as the runbook says: it still answers 200, with
{"cache": "unavailable"}, and logs a "redis cache error" line on stdout (its journal). Runs until SIGTERM.
"""

from __future__ import annotations

import argparse
import json
import signal
import socket
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def resp_call(sock_file, sock: socket.socket, *args: str) -> object:
    """Send one command, read one reply (simple strings, errors, integers, bulk strings)."""
    payload = f"*{len(args)}\r\n".encode() + b"".join(b"$%d\r\n%s\r\n" % (len(a.encode()), a.encode()) for a in args)
    sock.sendall(payload)
    line = sock_file.readline()
    if not line:
        raise ConnectionError("connection closed by Redis")
    kind, rest = line[:1], line[1:-2].decode()
    if kind == b"-":
        raise RuntimeError(rest)
    if kind == b":":
        return int(rest)
    if kind == b"$":
        return None if int(rest) < 0 else sock_file.read(int(rest) + 2)[:-2].decode()
    return rest


def use_cache(host: str, port: int) -> str:
    """'ok', or raise: a write and a read of the application's key."""
    with socket.create_connection((host, port), timeout=2) as sock, sock.makefile("rb") as f:
        resp_call(f, sock, "SET", "app:last-request", "served", "EX", "300")
        if resp_call(f, sock, "GET", "app:last-request") != "served":
            raise RuntimeError("cache returned a different value")
    return "ok"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--redis", required=True, help="HOST:PORT of the cache")
    parser.add_argument("--port", type=int, required=True, help="HTTP port of /health")
    args = parser.parse_args()
    host, _, port = args.redis.rpartition(":")

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path != "/health":
                self.send_error(404)
                return
            try:
                cache = use_cache(host, int(port))
            except (OSError, RuntimeError) as exc:
                reason = "ECONNREFUSED" if isinstance(exc, ConnectionRefusedError) else str(exc)
                print(f"redis cache error ({args.redis}): {reason}; serving without the cache", flush=True)
                cache = "unavailable"
            body = (json.dumps({"status": "ok", "cache": cache}) + "\n").encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass  # no access log: the journal holds only what the application says

    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
    print(f"serving /health on 127.0.0.1:{args.port}", flush=True)
    server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())

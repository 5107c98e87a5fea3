"""Drill stand-in for an application with a Redis cache (redis-cache-failure).

Serves GET /health on 127.0.0.1:--port. Each request uses the cache (SET then GET of one key, over a
fresh connection, with drill_redis.py); when that fails the application
keeps working without the cache, degraded, as the runbook says: it still answers 200, with
{"cache": "unavailable"}, and logs a "redis cache error" line on stdout (its journal). Runs until SIGTERM.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from drill_health import send  # molecule/_shared/apps/drill_health.py, beside this file
from drill_redis import Redis  # molecule/_shared/apps/drill_redis.py, beside this file


def use_cache(host: str, port: int) -> str:
    """'ok', or raise: a write and a read of the application's key."""
    conn = Redis(host, port, timeout=2)
    try:
        conn.call("SET", "app:last-request", "served", "EX", "300")
        if conn.call("GET", "app:last-request") != "served":
            raise RuntimeError("cache returned a different value")
    finally:
        conn.close()
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
            send(self, 200, body)

        def log_message(self, format: str, *args: object) -> None:
            pass  # no access log: the journal holds only what the application says

    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
    print(f"serving /health on 127.0.0.1:{args.port}", flush=True)
    server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())

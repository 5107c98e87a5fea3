"""Drill stand-in for an application whose requests query PostgreSQL (slow-responses): psycopg.

Serves on 127.0.0.1:--port, behind nginx: GET /api/products runs one query on the table ``products``
(a new connection per request, at most --pool at a time, as a pooled client does; no statement
timeout, as the runbook's application has none), GET /health answers without the database. A query that
fails (cancelled by the remediation) is a line on stdout (its journal) and a 500. Runs until SIGTERM.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import psycopg
from drill_health import send  # molecule/_shared/apps/drill_health.py, beside this file

QUERY = "SELECT id, name, price FROM products ORDER BY id LIMIT 20"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dsn", required=True, help="the application's DSN (no password: trust)")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--pool", type=int, default=8)
    args = parser.parse_args()
    pool = threading.BoundedSemaphore(args.pool)

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            if path == "/health":
                send(self, 200, json.dumps({"status": "ok", "pid": os.getpid()}).encode())
                return
            if path != "/api/products":
                send(self, 404, b'{"error":"not found"}')
                return
            try:
                with pool, psycopg.connect(args.dsn, connect_timeout=5, application_name="catalog-app") as conn:
                    rows = conn.execute(QUERY).fetchall()
            except psycopg.Error as exc:
                print(f"catalog-app: ERROR query failed: {str(exc).strip().splitlines()[0]}", flush=True)
                send(self, 500, b'{"error":"database error"}')
                return
            body = json.dumps({"products": [{"id": r[0], "name": r[1], "price": float(r[2])} for r in rows]})
            send(self, 200, body.encode())

        def handle(self) -> None:
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # nginx gave up on a slow answer
                super().handle()

        def log_message(self, format: str, *args: object) -> None:
            pass  # nginx's access log is the request log

    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.daemon_threads = True
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
    print(f"catalog-app: listening on 127.0.0.1:{args.port} (pid {os.getpid()})", flush=True)
    server.serve_forever(poll_interval=0.2)
    return 0


if __name__ == "__main__":
    sys.exit(main())

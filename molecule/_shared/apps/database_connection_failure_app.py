"""Drill stand-in for an application that loses its database (database-connection-failure).

Serves GET /health on 127.0.0.1:--port: 200 when its PostgreSQL connection answers SELECT 1, else 503 and
a "database connection error" line on stdout (its journal). Like an application whose pool never
validates its connections, it opens one connection (on the first request that can) and keeps it: once
PostgreSQL dies under it, that connection is dead and every request fails until the application is
restarted, which is why the runbook restarts the application once the database answers again.
Runs until SIGTERM.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import psycopg
from drill_health import send  # molecule/_shared/apps/drill_health.py, beside this file


class App:
    def __init__(self, dsn: str) -> None:
        self.dsn = dsn
        self.conn: psycopg.Connection | None = None
        self.lock = threading.Lock()

    def healthy(self) -> bool:
        with self.lock:
            try:
                if self.conn is None:
                    self.conn = psycopg.connect(
                        self.dsn, connect_timeout=3, autocommit=True, application_name="drill-app"
                    )
                    print("opened the pool's connection", flush=True)
                self.conn.execute("SELECT 1").fetchone()
            except psycopg.Error as exc:
                reason = " ".join(str(exc).split())
                print(f"database connection error: {reason}", flush=True)
                return False
        return True


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dsn", required=True, help="the application's DSN")
    parser.add_argument("--port", type=int, required=True, help="HTTP port of /health")
    args = parser.parse_args()
    app = App(args.dsn)

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path != "/health":
                self.send_error(404)
                return
            ok = app.healthy()
            body = (f'{{"database": "{"ok" if ok else "unavailable"}"}}\n').encode()
            send(self, 200 if ok else 503, body)

        def log_message(self, format: str, *args: object) -> None:
            pass  # no access log: the journal holds only what the application says

    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
    print(f"serving /health on 127.0.0.1:{args.port}", flush=True)
    server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())

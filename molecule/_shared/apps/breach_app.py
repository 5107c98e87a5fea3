"""Drill stand-in for the application behind nginx (security-breach-containment): stdlib only.

Real sessions and a real audit log: POST /login?user=NAME creates a session (Redis key ``sess:<token>``,
one hour) and answers its token in a ``sid`` cookie; GET /account answers 200 and the user for a live
session, 401 without one; GET /export?table=T (a session needed) is the data access an attacker abuses.
Every login and export is written to the audit table ``audit_logs`` in PostgreSQL as the application's
role (psql, variables quoted by psql), with the client address nginx passes in X-Real-IP. GET /health
answers 200; anything else 200 with a page. One line on stdout at start and stop (its journal).
"""

from __future__ import annotations

import argparse
import json
import secrets
import signal
import subprocess
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from drill_health import send  # molecule/_shared/apps/drill_health.py, beside this file
from drill_redis import Redis  # molecule/_shared/apps/drill_redis.py

AUDIT_SQL = "INSERT INTO audit_logs (actor, action, source_ip) VALUES (:'actor', :'action', :'ip');\n"


class Handler(BaseHTTPRequestHandler):
    server_version = "breach-app/1"
    redis_port = 6390
    pg_dsn = ""

    def _client(self) -> str:
        return self.headers.get("X-Real-IP") or self.client_address[0]

    def _session_user(self) -> str | None:
        cookie = self.headers.get("Cookie") or ""
        token = next((p.strip()[4:] for p in cookie.split(";") if p.strip().startswith("sid=")), "")
        if not token.isalnum():
            return None
        user = self._redis("GET", f"sess:{token}")
        return user if isinstance(user, str) else None

    def _redis(self, *args: object) -> object:
        client = Redis("127.0.0.1", self.redis_port, timeout=3)
        try:
            return client.call(*args)
        finally:
            client.close()

    def _audit(self, actor: str, action: str) -> bool:
        argv = ["psql", "-X", "-w", "-q", "-d", self.pg_dsn, "-v", "ON_ERROR_STOP=1",
                "-v", f"actor={actor}", "-v", f"action={action}", "-v", f"ip={self._client()}"]  # fmt: skip
        done = subprocess.run(argv, input=AUDIT_SQL, capture_output=True, text=True, timeout=10, check=False)
        if done.returncode != 0:
            print(f"breach-app: audit write failed: {done.stderr.strip()}", flush=True)
        return done.returncode == 0

    def do_POST(self) -> None:
        url = urlsplit(self.path)
        user = (parse_qs(url.query).get("user") or [""])[0]
        if url.path != "/login" or not user.isalnum():
            send(self, 400, b'{"error":"POST /login?user=NAME"}')
            return
        if not self._audit(user, "login"):
            send(self, 503, b'{"error":"audit log unavailable"}')
            return
        token = secrets.token_hex(16)
        self._redis("SET", f"sess:{token}", user, "EX", 3600)
        body = json.dumps({"user": user, "sid": token}).encode()
        self.send_response(200)
        self.send_header("Set-Cookie", f"sid={token}; HttpOnly; Path=/")
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        if url.path == "/health":
            send(self, 200, b'{"status":"ok"}')
        elif url.path in ("/account", "/export"):
            user = self._session_user()
            if user is None:
                send(self, 401, b'{"error":"not logged in"}')
                return
            table = (parse_qs(url.query).get("table") or ["-"])[0]
            if url.path == "/export" and not self._audit(user, f"export:{table}"):
                send(self, 503, b'{"error":"audit log unavailable"}')
                return
            send(self, 200, json.dumps({"user": user, "path": url.path}).encode())
        else:
            send(self, 200, f"breach app served {url.path}\n".encode(), "text/plain")

    def log_message(self, format: str, *args: object) -> None:
        pass  # nginx's access log is the request log


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--redis-port", type=int, required=True)
    parser.add_argument("--pg-dsn", required=True, help="libpq DSN of the application's role (no password)")
    args = parser.parse_args()
    Handler.redis_port, Handler.pg_dsn = args.redis_port, args.pg_dsn
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.daemon_threads = True

    def stop(signum: int, _frame: object) -> None:
        print(f"breach-app: {signal.Signals(signum).name} received, stopping", flush=True)
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop)
    print(f"breach-app: listening on 127.0.0.1:{args.port}", flush=True)
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())

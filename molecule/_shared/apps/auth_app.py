"""Drill stand-in for a login service behind nginx (auth-failures): stdlib only.

Its credential and session store is Redis (``user:NAME`` holds a PBKDF2 hash, ``sess:ID`` a session,
``lockout:ADDR`` the failed logins of one client address). It reads its secrets from its environment
at start, as a service does from its unit's EnvironmentFile: JWT_SECRET (signs the session tokens, HS256)
and REDIS_PASSWORD (Redis AUTH). A rotated secret reaches it only when it is restarted.

- POST /login {"user", "password"}: 429 when the client address (X-Real-IP, set by nginx) has failed
  --max-failures times within --lockout-seconds; 401 for bad credentials (counted against the address);
  200 {"token"} with a new session. When the store refuses the application (a stale password), no login
  can be checked or counted: 401 for everyone and the lockout is not enforced (it fails open).
- GET /api/me with ``Authorization: Bearer TOKEN``: 200 {"user"} for a valid token whose session
  exists, else 401.
- GET /health, /api/health: 200 when the session store answers, else 503.

Every refusal is a line on stdout (its journal). ``auth_app.py add-user NAME`` (password on stdin)
stores a user. Runs until SIGTERM.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import json
import os
import secrets
import signal
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from drill_health import send  # molecule/_shared/apps/drill_health.py, beside this file
from drill_redis import Redis  # molecule/_shared/apps/drill_redis.py, beside this file

ITERATIONS = 2000  # PBKDF2 rounds: real hashing, cheap enough for a flood on a loaded machine


class StoreError(Exception):
    """The session store cannot be used (refused AUTH, not reachable)."""


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def hash_password(password: str, salt: bytes) -> str:
    digest = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, ITERATIONS)
    return f"pbkdf2_sha256${ITERATIONS}${b64(salt)}${b64(digest)}"


def check_password(password: str, stored: str) -> bool:
    _scheme, rounds, salt, digest = stored.split("$")
    mine = hashlib.pbkdf2_hmac("sha256", password.encode(), unb64(salt), int(rounds))
    return hmac.compare_digest(mine, unb64(digest))


def sign(claims: dict[str, object], key: str) -> str:
    head = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    body = b64(json.dumps(claims).encode())
    mac = hmac.new(key.encode(), f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}.{b64(mac)}"


def verify(token: str, key: str) -> dict[str, object] | None:
    """The claims of a token signed with ``key`` and not expired, else None."""
    try:
        head, body, mac = token.split(".")
        good = hmac.new(key.encode(), f"{head}.{body}".encode(), hashlib.sha256).digest()
        claims = json.loads(unb64(body))
    except ValueError:
        return None
    if not hmac.compare_digest(good, unb64(mac)) or not isinstance(claims, dict):
        return None
    return claims if float(claims.get("exp", 0)) > time.time() else None


class Store:
    """A fresh, authenticated Redis connection per request (as a pooled client reconnects)."""

    def __init__(self, address: str, password: str) -> None:
        host, _, port = address.rpartition(":")
        self.host, self.port, self.password = host, int(port), password

    def open(self) -> Redis:
        try:
            conn = Redis(self.host, self.port, timeout=2)
        except OSError as exc:
            raise StoreError(f"not reachable ({exc.__class__.__name__})") from exc
        try:
            if self.password:
                conn.call("AUTH", self.password)
            conn.call("PING")
        except (OSError, RuntimeError) as exc:
            conn.close()
            raise StoreError(str(exc).split(" ")[0] or "refused") from exc  # WRONGPASS / NOAUTH, no details
        return conn


class App:
    def __init__(self, store: Store, key: str, max_failures: int, lockout_seconds: int) -> None:
        self.store, self.key = store, key
        self.max_failures, self.lockout_seconds = max_failures, lockout_seconds

    def login(self, user: str, password: str, addr: str) -> tuple[int, dict[str, object]]:
        try:
            conn = self.store.open()
        except StoreError as exc:
            print(
                f"auth error: session store refused the application ({exc}): login unauthorized for "
                f"{user!r} from {addr}; lockout not enforced",
                flush=True,
            )
            return 401, {"error": "unauthorized"}
        try:
            if int(str(conn.call("GET", f"lockout:{addr}") or 0)) >= self.max_failures:
                return 429, {"error": "too many failed logins; try again later"}
            stored = conn.call("HGET", f"user:{user}", "password")
            if not isinstance(stored, str) or not check_password(password, stored):
                if conn.call("INCR", f"lockout:{addr}") == 1:  # the window starts at the first failure
                    conn.call("EXPIRE", f"lockout:{addr}", self.lockout_seconds)
                print(f"auth failure: invalid credentials for {user!r} from {addr} (unauthorized)", flush=True)
                return 401, {"error": "unauthorized"}
            sid = secrets.token_urlsafe(16)
            conn.call("SET", f"sess:{sid}", user, "EX", 3600)
        finally:
            conn.close()
        return 200, {"token": sign({"sub": user, "sid": sid, "exp": time.time() + 3600}, self.key)}

    def me(self, authorization: str) -> tuple[int, dict[str, object]]:
        claims = verify(authorization.removeprefix("Bearer "), self.key)
        if claims is None:
            print("auth error: invalid or expired token (unauthorized)", flush=True)
            return 401, {"error": "unauthorized"}
        try:
            conn = self.store.open()
        except StoreError as exc:
            print(
                f"auth error: session store refused the application ({exc}): session unverified (unauthorized)",
                flush=True,
            )
            return 401, {"error": "unauthorized"}
        try:
            user = conn.call("GET", f"sess:{claims.get('sid')}")
        finally:
            conn.close()
        if user != claims.get("sub"):
            print("auth error: unknown session (unauthorized)", flush=True)
            return 401, {"error": "unauthorized"}
        return 200, {"user": user}

    def health(self) -> tuple[int, dict[str, object]]:
        try:
            self.store.open().close()
        except StoreError as exc:
            return 503, {"status": "degraded", "session_store": str(exc)}
        return 200, {"status": "ok", "session_store": "ok"}


def serve(app: App, port: int) -> None:
    class Handler(BaseHTTPRequestHandler):
        def answer(self, result: tuple[int, dict[str, object]]) -> None:
            send(self, result[0], (json.dumps(result[1]) + "\n").encode())

        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            if path in ("/health", "/api/health"):
                self.answer(app.health())
            elif path == "/api/me":
                self.answer(app.me(self.headers.get("Authorization", "")))
            else:
                self.answer((404, {"error": "not found"}))

        def do_POST(self) -> None:
            if self.path != "/login":
                self.answer((404, {"error": "not found"}))
                return
            try:
                form = json.loads(self.rfile.read(int(self.headers.get("Content-Length", "0"))) or b"{}")
                user, password = str(form["user"]), str(form["password"])
            except (ValueError, KeyError, TypeError):
                self.answer((400, {"error": "expected JSON {user, password}"}))
                return
            addr = self.headers.get("X-Real-IP") or self.client_address[0]
            self.answer(app.login(user, password, addr))

        def log_message(self, format: str, *args: object) -> None:
            pass  # nginx's access log is the request log

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
    print(f"auth-app: listening on 127.0.0.1:{port} (pid {os.getpid()})", flush=True)
    server.serve_forever(poll_interval=0.2)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", nargs="?", default="serve", choices=["serve", "add-user"])
    parser.add_argument("name", nargs="?", help="add-user: the user name (the password is read from stdin)")
    parser.add_argument("--redis", required=True, help="HOST:PORT of the credential and session store")
    parser.add_argument("--port", type=int, default=18110)
    parser.add_argument("--max-failures", type=int, default=5)
    parser.add_argument("--lockout-seconds", type=int, default=300)
    args = parser.parse_args()
    store = Store(args.redis, os.environ.get("REDIS_PASSWORD", ""))
    if args.command == "add-user":
        conn = store.open()
        conn.call("HSET", f"user:{args.name}", "password", hash_password(sys.stdin.readline().strip(), os.urandom(16)))
        conn.close()
        return 0
    key = os.environ.get("JWT_SECRET", "")
    if not key:
        print("auth-app: JWT_SECRET is not set; refusing to start", flush=True)
        return 1
    serve(App(store, key, args.max_failures, args.lockout_seconds), args.port)
    return 0


if __name__ == "__main__":
    sys.exit(main())

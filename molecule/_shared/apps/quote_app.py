"""Drill stand-in for an application with a feature backed by a third-party API (external-api-outage).

Serves on 127.0.0.1:--port, behind nginx. GET /api/quote asks the provider (--provider, its /v1/rates,
with ``Authorization: Bearer`` PROVIDER_API_KEY from the environment, --timeout seconds) and answers
200 {"source": "provider"}, keeping the answer as the last good one; when the call fails it logs a
"provider error" line on stdout (its journal) and answers 502. With the fallback on it does not call the
provider at all and answers 200 {"source": "fallback"} from the last good answer (degraded).

POST /admin/fallback {"enabled": true|false} with ``Authorization: Bearer`` ADMIN_TOKEN (environment)
switches the fallback; GET /health (also /api/health) answers 200 with the fallback's state. Runs until
SIGTERM.
"""

from __future__ import annotations

import argparse
import hmac
import http.client
import json
import os
import signal
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

from drill_health import send  # molecule/_shared/apps/drill_health.py, beside this file


class Feature:
    def __init__(self, provider: str, timeout: float) -> None:
        url = urlsplit(provider)
        self.host, self.port, self.timeout = url.hostname or "127.0.0.1", url.port or 80, timeout
        self.url = provider.rstrip("/") + "/v1/rates"
        self.key = os.environ.get("PROVIDER_API_KEY", "")
        self.lock = threading.Lock()
        self.fallback = False
        self.last_good: object = {"base": "USD", "rates": {}}

    def quote(self) -> tuple[int, dict[str, object]]:
        with self.lock:
            if self.fallback:
                return 200, {"source": "fallback", "degraded": True, "quote": self.last_good}
        conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
        try:
            conn.request("GET", "/v1/rates", headers={"Authorization": f"Bearer {self.key}"})
            response = conn.getresponse()
            body = response.read()
            if response.status != 200:
                raise LookupError(f"HTTP {response.status}")
            answer = json.loads(body)
        except (OSError, ValueError, LookupError) as exc:
            reason = "timed out" if isinstance(exc, TimeoutError) else str(exc) or exc.__class__.__name__
            if isinstance(exc, ConnectionRefusedError):
                reason = "ECONNREFUSED"
        else:
            with self.lock:
                self.last_good = answer
            return 200, {"source": "provider", "quote": answer}
        finally:
            conn.close()
        print(f"provider error: {reason} (GET {self.url}, timeout {self.timeout:g} s)", flush=True)
        return 502, {"error": "the rates provider failed"}

    def switch(self, enabled: bool) -> None:
        with self.lock:
            self.fallback = enabled
        state = "on: answers come from the last good quote, the provider is not called" if enabled else "off"
        print(f"fallback {state} (admin request)", flush=True)

    def health(self) -> dict[str, object]:
        with self.lock:
            return {"status": "ok", "fallback": self.fallback}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--provider", required=True, help="base URL of the provider")
    parser.add_argument("--timeout", type=float, default=2)
    args = parser.parse_args()
    feature = Feature(args.provider, args.timeout)
    token = os.environ.get("ADMIN_TOKEN", "")

    class Handler(BaseHTTPRequestHandler):
        def answer(self, status: int, body: object) -> None:
            send(self, status, (json.dumps(body) + "\n").encode())

        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            if path in ("/health", "/api/health"):
                self.answer(200, feature.health())
            elif path == "/api/quote":
                self.answer(*feature.quote())
            else:
                self.answer(404, {"error": "not found"})

        def do_POST(self) -> None:
            given = self.headers.get("Authorization", "").removeprefix("Bearer ")
            if self.path != "/admin/fallback":
                self.answer(404, {"error": "not found"})
                return
            if not token or not hmac.compare_digest(given.encode(), token.encode()):
                self.answer(401, {"error": "unauthorized"})
                return
            try:
                enabled = json.loads(self.rfile.read(int(self.headers.get("Content-Length", "0"))))["enabled"]
            except (ValueError, KeyError, TypeError):
                self.answer(400, {"error": 'expected JSON {"enabled": true|false}'})
                return
            feature.switch(bool(enabled))
            self.answer(200, feature.health())

        def log_message(self, format: str, *args: object) -> None:
            pass  # nginx's access log is the request log

    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.daemon_threads = True
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
    print(f"quote-app: listening on 127.0.0.1:{args.port} (pid {os.getpid()})", flush=True)
    server.serve_forever(poll_interval=0.2)
    return 0


if __name__ == "__main__":
    sys.exit(main())

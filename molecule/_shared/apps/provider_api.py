"""Drill stand-in for a third-party API (external-api-outage): stdlib only.

Serves on 127.0.0.1:--port: GET /v1/health and GET /v1/rates, each only with
``Authorization: Bearer KEY`` where KEY is PROVIDER_API_KEY from its environment (else 401). The drill
makes it hang for real (SIGSTOP): connections are still accepted by the kernel, and nothing answers.
Runs until SIGTERM.
"""

from __future__ import annotations

import argparse
import hmac
import json
import os
import signal
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from drill_health import send  # molecule/_shared/apps/drill_health.py, beside this file

RATES = {"EUR": 0.92, "GBP": 0.79, "JPY": 151.3}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    key = os.environ.get("PROVIDER_API_KEY", "")

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            given = self.headers.get("Authorization", "").removeprefix("Bearer ")
            if not key or not hmac.compare_digest(given.encode(), key.encode()):
                send(self, 401, b'{"error":"invalid API key"}')
            elif self.path == "/v1/health":
                send(self, 200, b'{"status":"ok"}')
            elif self.path == "/v1/rates":
                send(self, 200, json.dumps({"base": "USD", "rates": RATES}).encode())
            else:
                send(self, 404, b'{"error":"not found"}')

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.daemon_threads = True
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
    print(f"provider-api: listening on 127.0.0.1:{args.port} (pid {os.getpid()})", flush=True)
    server.serve_forever(poll_interval=0.2)
    return 0


if __name__ == "__main__":
    sys.exit(main())

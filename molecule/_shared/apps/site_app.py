"""Drill stand-in for the application behind nginx (site-outage, ddos-traffic-spike): stdlib only.

Answers GET /health with 200 {"status": "ok"} and every other GET with 200 and a page naming this
process, so a drill can tell "nginx answered" from "the application answered through nginx". One line
on stdout at start and at stop (its journal); runs until SIGTERM.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from drill_health import send  # molecule/_shared/apps/drill_health.py, beside this file


class Handler(BaseHTTPRequestHandler):
    server_version = "site-app/1"

    def do_GET(self) -> None:
        if self.path.split("?", 1)[0] == "/health":
            body = json.dumps({"status": "ok", "pid": os.getpid()}).encode()
            kind = "application/json"
        else:
            body = f"site app (pid {os.getpid()}) served {self.path}\n".encode()
            kind = "text/plain"
        send(self, 200, body, kind)

    def log_message(self, format: str, *args: object) -> None:
        pass  # nginx's access log is the request log; keep the journal to what matters


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    args = parser.parse_args()
    server = ThreadingHTTPServer((args.host, args.port), Handler)
    server.daemon_threads = True

    def stop(signum: int, _frame: object) -> None:
        print(f"site-app: {signal.Signals(signum).name} received, stopping", flush=True)
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop)
    print(f"site-app: listening on {args.host}:{args.port} (pid {os.getpid()})", flush=True)
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())

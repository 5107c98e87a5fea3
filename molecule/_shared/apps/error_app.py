"""Drill stand-in for an application with a bad release (high-error-rate): stdlib only.

Started as ``error_app.py --release CURRENT`` where CURRENT is the ``current`` symlink of a release
layout. At start it resolves the link and reads ``release.json`` of that release: ``{"version": "...",
"error_percent": N}``. It then fails N percent of all requests (evenly spread, deterministic) with a
500 and an ERROR line on stdout (its journal), the way a release with a bug in a hot code path does;
the others, and every request of a good release (N = 0), get a 200. A restart re-reads the link, so
switching ``current`` back and restarting is what fixes it. Runs until SIGTERM.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from drill_health import send  # molecule/_shared/apps/drill_health.py, beside this file


class Release:
    def __init__(self, link: Path) -> None:
        self.path = link.resolve()
        spec = json.loads((self.path / "release.json").read_text())
        self.version = str(spec["version"])
        self.error_percent = int(spec.get("error_percent", 0))
        self._lock = threading.Lock()
        self._served = 0

    def fails_next(self) -> tuple[bool, int]:
        """Whether the next request fails: request n fails when floor(n*p/100) steps up."""
        with self._lock:
            n = self._served
            self._served += 1
        p = self.error_percent
        return (n + 1) * p // 100 > n * p // 100, n + 1


class Handler(BaseHTTPRequestHandler):
    server_version = "error-app/1"
    release: Release

    def do_GET(self) -> None:
        failed, n = self.release.fails_next()
        if failed:
            print(
                f"ERROR release {self.release.version}: request {n} GET {self.path} failed: "
                f"KeyError 'customer_id' in orders.load_cart",
                flush=True,
            )
            status, body = 500, b'{"error": "internal server error"}'
        else:
            status, body = 200, json.dumps({"status": "ok", "release": self.release.version}).encode()
        send(self, status, body)

    def log_message(self, format: str, *args: object) -> None:
        pass  # nginx's access log is the request log


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--release", required=True, type=Path, help="the current-release symlink")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    args = parser.parse_args()
    Handler.release = release = Release(args.release)
    server = ThreadingHTTPServer((args.host, args.port), Handler)
    server.daemon_threads = True

    def stop(signum: int, _frame: object) -> None:
        print(f"error-app: {signal.Signals(signum).name} received, stopping", flush=True)
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop)
    print(
        f"error-app: release {release.version} ({release.path}, {release.error_percent}% of requests fail) "
        f"listening on {args.host}:{args.port} (pid {os.getpid()})",
        flush=True,
    )
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Drill stand-in for one instance of a horizontally scaled application (scale-out): stdlib only.

Instance N listens on 127.0.0.1:(--port-base + N), as a systemd template unit app@N would. It serves one
request at a time and each takes --work-ms (a fixed capacity, so too few instances really queue the
traffic). Every answer names the instance: the header X-Instance "app@N 127.0.0.1:PORT" and the body
"instance app@N port PORT pid PID served PATH". GET /health answers 200 {"status": "ok", ...}. One line on
stdout at start and at stop (its journal); runs until SIGTERM.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
from http.server import BaseHTTPRequestHandler, HTTPServer


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port-base", type=int, required=True)
    parser.add_argument("--index", type=int, required=True)
    parser.add_argument("--work-ms", type=int, default=0)
    args = parser.parse_args()
    port = args.port_base + args.index
    name = f"app@{args.index}"

    class Handler(BaseHTTPRequestHandler):
        server_version = "instance-app/1"

        def do_GET(self) -> None:
            if self.path.split("?", 1)[0] == "/health":
                body = json.dumps({"status": "ok", "instance": name, "port": port}).encode()
                kind = "application/json"
            else:
                time.sleep(args.work_ms / 1000)
                body = f"instance {name} port {port} pid {os.getpid()} served {self.path}\n".encode()
                kind = "text/plain"
            self.send_response(200)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("X-Instance", f"{name} 127.0.0.1:{port}")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass  # nginx's access log is the request log

    server = HTTPServer(("127.0.0.1", port), Handler)  # one request at a time: a fixed capacity

    def stop(signum: int, _frame: object) -> None:
        print(f"{name}: {signal.Signals(signum).name} received, stopping", flush=True)
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop)
    print(f"{name}: listening on 127.0.0.1:{port} (pid {os.getpid()})", flush=True)
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())

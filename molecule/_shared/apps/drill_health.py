"""The health endpoint of drill stand-in applications: GET /health answers 200 {"status":"ok"} while the
process runs (anything else 404), served from a daemon thread."""

from __future__ import annotations

import http.server
import threading


class Health(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b'{"status":"ok"}' if self.path == "/health" else b'{"error":"not found"}'
        self.send_response(200 if self.path == "/health" else 404)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_args: object) -> None:
        pass


def serve_health(listen: str) -> None:
    """Serve /health on ``HOST:PORT`` until the process exits."""
    host, _, port = listen.rpartition(":")
    server = http.server.ThreadingHTTPServer((host, int(port)), Health)
    threading.Thread(target=server.serve_forever, daemon=True).start()

"""What drill stand-in applications share over HTTP: ``send`` (one JSON or text answer), and the health
endpoint of the ones that serve nothing else: GET /health answers 200 {"status":"ok"} while the
process runs (anything else 404), served from a daemon thread."""

from __future__ import annotations

import http.server
import threading


def send(handler: http.server.BaseHTTPRequestHandler, status: int, body: bytes, kind: str = "application/json") -> None:
    """Answer one request: status, Content-Type and Content-Length, then the body."""
    handler.send_response(status)
    handler.send_header("Content-Type", kind)
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    handler.wfile.write(body)


class Health(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        found = self.path == "/health"
        send(self, 200 if found else 404, b'{"status":"ok"}' if found else b'{"error":"not found"}')

    def log_message(self, *_args: object) -> None:
        pass


def serve_health(listen: str) -> None:
    """Serve /health on ``HOST:PORT`` until the process exits."""
    host, _, port = listen.rpartition(":")
    server = http.server.ThreadingHTTPServer((host, int(port)), Health)
    threading.Thread(target=server.serve_forever, daemon=True).start()

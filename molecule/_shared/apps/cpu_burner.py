"""Drill stand-in for an application whose workers got stuck in a runaway loop (high-cpu).

Starts idle and serves only its health check (GET /health). SIGUSR1 is the bad request: --workers
threads (default: one per core) enter a loop that never ends, re-hashing a token (hashlib releases the
GIL, so each thread burns a core of its own, all in this one process). Only a restart clears it, which is
the runbook's quick fix. Runs until SIGTERM; status lines on stdout (the unit's journal).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import signal
import sys
import threading

from drill_health import serve_health  # molecule/_shared/apps/drill_health.py, beside this file


def runaway(stop: threading.Event, worker: int) -> None:
    token = f"retry-{worker}".encode()
    while not stop.is_set():
        token = hashlib.pbkdf2_hmac("sha256", token, b"salt", 20000)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="threads that run away")
    parser.add_argument("--health", default="127.0.0.1:8089", help="HOST:PORT of the health endpoint")
    args = parser.parse_args()
    stop = threading.Event()
    bad_request = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGUSR1, lambda *_: bad_request.set())
    serve_health(args.health)
    print(f"app started, {args.workers} workers idle", flush=True)
    while not stop.is_set():
        if bad_request.is_set():
            bad_request.clear()
            for worker in range(args.workers):
                threading.Thread(target=runaway, args=(stop, worker), daemon=True).start()
            print(f"warning: {args.workers} workers stuck in a runaway retry loop", flush=True)
        stop.wait(0.1)
    print("app stopping", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

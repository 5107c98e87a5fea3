"""Drill stand-in for an application writing its log on a filesystem that fills up (disk-space-exhausted).

Appends one numbered line to --log every --interval seconds, the way an application logs its requests.
When the filesystem is full the write fails: the line is lost, and the failure (and later the recovery)
is reported once on stdout, the unit's journal - "logs stop being written", as the runbook says.
Runs until SIGTERM.
"""

from __future__ import annotations

import argparse
import errno
import os
import signal
import sys
import threading
import time


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--log", required=True, help="the live log file")
    parser.add_argument("--interval", type=float, default=0.2, help="seconds between log lines")
    args = parser.parse_args()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    fd = os.open(args.log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    print(f"app started, logging to {args.log}", flush=True)
    seq = written = lost = 0
    failing = False
    while not stop.is_set():
        seq += 1
        line = f"{time.strftime('%Y-%m-%dT%H:%M:%S')} app[{os.getpid()}]: request {seq} handled in 3 ms\n".encode()
        try:
            os.write(fd, line)
        except OSError as exc:
            if exc.errno not in (errno.ENOSPC, errno.EDQUOT):
                raise
            lost += 1
            if not failing:
                print(f"error: write to {args.log} failed: {os.strerror(exc.errno)}", flush=True)
                failing = True
        else:
            written += 1
            if failing:
                print(f"log writes resumed at request {seq} after {lost} lost lines", flush=True)
                failing = False
        stop.wait(args.interval)
    os.close(fd)
    print(f"app stopping: {written} lines written, {lost} lost", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Drill stand-in for an application that leaks memory (high-memory).

Starts small and serves only its health check (GET /health). Each SIGUSR1 leaks --leak-mib MiB more,
allocated and touched (resident, not just reserved): the heap a real leak accumulates over hours of
traffic, delivered at once so a drill does not wait for it. A restart starts from a small heap again,
which is why restarting is the runbook's quick fix. Runs until SIGTERM; one heap status line per change
on stdout (the unit's journal).
"""

from __future__ import annotations

import argparse
import mmap
import resource
import signal
import sys
import threading

from drill_health import serve_health  # molecule/_shared/apps/drill_health.py, beside this file

MIB = 1 << 20


def rss_mib() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) // 1024
    return 0


def leak_block(size: int) -> mmap.mmap:
    """``size`` bytes of anonymous memory, every page resident (faulted in by the kernel at once)."""
    block = mmap.mmap(-1, size, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS | mmap.MAP_POPULATE)
    block[:: mmap.PAGESIZE] = b"\x5a" * (size // mmap.PAGESIZE)  # and written: dirty, not the shared zero page
    return block


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--leak-mib", type=int, default=1024, help="MiB leaked per SIGUSR1")
    parser.add_argument("--health", default="127.0.0.1:8089", help="HOST:PORT of the health endpoint")
    args = parser.parse_args()
    stop = threading.Event()
    leak = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGUSR1, lambda *_: leak.set())
    held: list[mmap.mmap] = []
    serve_health(args.health)
    print(f"app started, {rss_mib()} MiB resident", flush=True)
    while not stop.is_set():
        if leak.is_set():
            leak.clear()
            held.append(leak_block(args.leak_mib * MIB))
            print(
                f"warning: heap grew to {rss_mib()} MiB resident ({len(held)} leaks of {args.leak_mib} MiB), "
                f"peak {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024} MiB",
                flush=True,
            )
        stop.wait(0.1)
    print("app stopping", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

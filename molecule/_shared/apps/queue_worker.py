"""Drill stand-in for a Redis-list job queue's worker and its producer (queue-backlog).

``work``: pops jobs from the list --queue (BLPOP, one at a time), spends --job-ms on each (the e-mail or
the image of the runbook) and counts it in --done-key (INCR); one line on stdout when it starts and when
it stops, and an "error" line when Redis fails it (then it reconnects). ``produce``: pushes --rate jobs
per second onto the list, steadily, like the application enqueuing work, and counts them in
--enqueued-key in the same transaction, so that enqueued = done + waiting + in flight (no job lost).
Redis through drill_redis.py (the venv has no redis package). Both run until SIGTERM.
"""

from __future__ import annotations

import argparse
import signal
import sys
import time

from drill_redis import Redis  # molecule/_shared/apps/drill_redis.py, beside this file


class Stop(Exception):
    pass


def _raise_stop(*_: object) -> None:
    raise Stop


def work(args: argparse.Namespace, name: str) -> None:
    done = 0
    conn: Redis | None = None
    print(f"{name}: consuming {args.queue} on {args.redis}, {args.job_ms} ms per job", flush=True)
    try:
        while True:
            try:
                if conn is None:
                    conn = Redis(args.host, args.port, timeout=5)
                popped = conn.call("BLPOP", args.queue, 1)
                if popped is None:
                    continue
                time.sleep(args.job_ms / 1000)
                conn.call("INCR", args.done_key)
                done += 1
            except (OSError, RuntimeError) as exc:
                print(f"{name}: error talking to Redis: {exc}; retrying in 1 s", flush=True)
                if conn is not None:
                    conn.close()
                conn = None
                time.sleep(1)
    except Stop:
        print(f"{name}: stopping after {done} jobs", flush=True)


def produce(args: argparse.Namespace, name: str) -> None:
    conn: Redis | None = None
    sent, tick, started = 0, 0.1, time.monotonic()
    print(f"{name}: enqueuing {args.rate} jobs/s onto {args.queue} on {args.redis}", flush=True)
    try:
        while True:
            due = int((time.monotonic() - started) * args.rate)
            try:
                if due > sent:
                    if conn is None:
                        conn = Redis(args.host, args.port, timeout=5)
                    conn.call("MULTI")
                    conn.call("RPUSH", args.queue, *(f"job-{n}" for n in range(sent, due)))
                    conn.call("INCRBY", args.enqueued_key, due - sent)
                    conn.call("EXEC")
                    sent = due
            except (OSError, RuntimeError) as exc:
                print(f"{name}: error talking to Redis: {exc}; retrying in 1 s", flush=True)
                if conn is not None:
                    conn.close()
                conn = None
                time.sleep(1)
            time.sleep(tick)
    except Stop:
        print(f"{name}: stopping after {sent} jobs", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("role", choices=["work", "produce"])
    parser.add_argument("--redis", default="127.0.0.1:6390", help="HOST:PORT of Redis")
    parser.add_argument("--queue", default="jobs", help="the list of pending jobs")
    parser.add_argument("--name", default="", help="how the process names itself in its log")
    parser.add_argument("--job-ms", type=int, default=20, help="work: milliseconds spent on each job")
    parser.add_argument("--done-key", default="jobs:done", help="work: counter of finished jobs")
    parser.add_argument("--rate", type=float, default=50, help="produce: jobs enqueued per second")
    parser.add_argument("--enqueued-key", default="jobs:enqueued", help="produce: counter of enqueued jobs")
    args = parser.parse_args()
    host, _, port = args.redis.rpartition(":")
    args.host, args.port = host, int(port)
    signal.signal(signal.SIGTERM, _raise_stop)
    name = args.name or args.role
    (work if args.role == "work" else produce)(args, name)
    return 0


if __name__ == "__main__":
    sys.exit(main())

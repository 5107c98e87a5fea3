"""Drill stand-in for an application that leaks PostgreSQL connections (db-pool-exhausted).

Opens connections as the application role until PostgreSQL refuses more (or --pool is reached), leaves
them idle, and keeps one busy with a long-running query: the pool exhaustion of the runbook. With
--reconnect it reopens whatever gets terminated, like a leak that is still leaking (the drill where
the mitigation does not fix the fault). Runs until SIGTERM; one status line per change on stdout.
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
import threading

import psycopg


def connect(dsn: str) -> psycopg.Connection | None:
    try:
        return psycopg.connect(dsn, connect_timeout=3, autocommit=True, application_name="leaky-app")
    except psycopg.OperationalError:
        return None


def slow_query(conn: psycopg.Connection, seconds: int) -> None:
    with contextlib.suppress(psycopg.Error):  # terminated by the remediation
        conn.execute(f"SELECT pg_sleep({seconds}) /* report query stuck on a lock */")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dsn", required=True, help="the application's DSN")
    parser.add_argument("--pool", type=int, default=1000, help="at most this many connections")
    parser.add_argument("--slow-query", type=int, default=600, help="seconds of the stuck query (0: none)")
    parser.add_argument("--reconnect", action="store_true", help="reopen terminated connections")
    args = parser.parse_args()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    held: list[psycopg.Connection] = []
    slow: psycopg.Connection | None = None
    first = True
    while not stop.is_set():
        if first or args.reconnect:
            for conn in list(held):  # a terminated idle session only shows when used
                try:
                    conn.execute("SELECT 1")
                except psycopg.Error:
                    held.remove(conn)
            if args.slow_query and (slow is None or slow.closed):
                slow = connect(args.dsn)
                if slow is not None:
                    threading.Thread(target=slow_query, args=(slow, args.slow_query), daemon=True).start()
            before = len(held)
            while len(held) < args.pool:
                conn = connect(args.dsn)
                if conn is None:
                    break
                held.append(conn)
            if first or len(held) != before:
                print(f"holding {len(held)} idle connections and a slow query: {slow is not None}", flush=True)
            first = False
        stop.wait(0.1 if args.reconnect else 0.5)  # a leak that persists refills the pool at once
    for conn in [*held, *([slow] if slow else [])]:
        conn.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())

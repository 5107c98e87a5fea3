"""The README's first command: a real "too many connections" incident on this machine, remediated by irx.

Starts a throwaway PostgreSQL (max_connections=20) and an nginx health endpoint on loopback, exhausts the
pool the way a leaking application does (idle sessions of role ``app`` plus a long-running query),
shows that the application can no longer connect, runs ``irx run db-pool-exhausted`` for real on the
embedded default inventory (this machine) with its live progress, then shows the recovery and where the
run's journal is. Everything it started is stopped at the end, whatever happens.
"""

from __future__ import annotations

import contextlib
import shlex
import subprocess
import sys
import threading
import time
from pathlib import Path

import psycopg

from irx_testenv import NginxServer, PostgresServer

REPO = Path(__file__).resolve().parents[1]
PG_PORT, HEALTH_PORT = 54329, 8089  # the defaults of playbooks/db-pool-exhausted.yaml


def app_can_connect(pg: PostgresServer) -> str:
    try:
        with psycopg.connect(pg.dsn_for("app", "app", "app-password"), connect_timeout=3) as conn:
            conn.execute("SELECT 1")
        return "yes"
    except psycopg.OperationalError as exc:
        return "NO: " + str(exc).strip().splitlines()[-1]


def exhaust(pg: PostgresServer) -> list[psycopg.Connection]:
    held = []
    while True:  # idle sessions until PostgreSQL refuses the app role
        try:
            held.append(psycopg.connect(pg.dsn_for("app", "app", "app-password"), connect_timeout=3))
        except psycopg.OperationalError:
            break
    held.pop().close()  # leave one slot for the stuck query below
    stuck = psycopg.connect(pg.dsn_for("app", "app", "app-password"), autocommit=True)
    threading.Thread(target=_sleep_query, args=(stuck,), daemon=True).start()
    time.sleep(1.5)  # older than the playbook's long_running_seconds below
    return [*held, stuck]


def _sleep_query(conn: psycopg.Connection) -> None:
    with contextlib.suppress(psycopg.Error):  # terminated by irx: that is the point
        conn.execute("SELECT pg_sleep(600) /* a stuck report query */")


def main() -> int:
    print("== starting a throwaway PostgreSQL (max_connections=20) and an nginx health endpoint")
    logs = REPO / ".irx" / "demo"  # the servers' logs, kept for reading (not in /tmp)
    logs.mkdir(parents=True, exist_ok=True)
    with (
        PostgresServer(port=PG_PORT, max_connections=20, base_dir=logs) as pg,
        NginxServer(port=HEALTH_PORT, base_dir=logs) as _web,
    ):
        pg.create_role_and_db("app", "app-password", dbname="app")
        held = exhaust(pg)
        print(f"== the incident: the app holds {len(held)} connections; can the app connect? {app_can_connect(pg)}")
        command = [str(Path(sys.executable).parent / "irx"), "run", "db-pool-exhausted", "--yes",
                   "-e", "long_running_seconds=1", "-e", "restart_app=false"]
        shown = shlex.join([".venv/bin/irx", *command[1:]])
        print(f"== {shown}\n   (inventory: local, this machine; run it yourself the same way)\n", flush=True)
        rc = subprocess.run(command, cwd=REPO, check=False).returncode
        print(f"\n== after irx (exit {rc}): can the app connect? {app_can_connect(pg)}")
        for conn in held:
            conn.close()
    runs = sorted((REPO / ".irx" / "runs").glob("*/timeline.jsonl"))
    if runs:
        run_dir = runs[-1].parent
        irx = str(Path(sys.executable).parent / "irx")
        for fmt, name in (("markdown", "postmortem.md"), ("html", "postmortem.html")):
            subprocess.run([irx, "report", run_dir.name, "--format", fmt, "-o", str(run_dir / name)],
                           cwd=REPO, check=False, stdout=subprocess.DEVNULL)
        print(f"== the run's journal:      {run_dir.relative_to(REPO)}/timeline.jsonl")
        print(f"== the post-mortem draft:  {run_dir.relative_to(REPO)}/postmortem.md (and postmortem.html)")
        print(f"   or render it again:     .venv/bin/irx report {run_dir.name} --format markdown")
    return rc


if __name__ == "__main__":
    sys.exit(main())

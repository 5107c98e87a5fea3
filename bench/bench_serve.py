"""irx serve: from an Alertmanager notification to the first diagnostic result and the first message.

One real ``irx serve`` on a loopback port, a route to ``db-pool-exhausted`` in mode diagnose on this
machine (the local inventory) against a throwaway PostgreSQL (irx_testenv.PostgresServer, as the demo
starts it), the notification channel a webhook receiver in this process. Per repetition a new alert group
is POSTed in Alertmanager's webhook v4 format and timed from the moment the request is sent:

- to the first diagnostic result: the journal's ``step_finished`` of the first diagnose step (its ``ts``);
- to the first message at the channel (its arrival at the receiver): the diagnosis with the run's link.

Reference (no tool does this job here: ansible-rulebook needs Java and drools, not installable offline):
the same playbook started by hand, ``irx run db-pool-exhausted --dry-run``, timed from process spawn to the
same journal event. Repetitions are interleaved (serve, by hand, by hand, serve, ...).

Then the storm: hundreds of notifications over tens of groups POSTed by 16 threads at once (repeats
interleaved), twice: groups the route does not match (recorded, no run: the server alone) and groups it
does (each starts a run, at most max_concurrent at once, while the storm lasts). Reported: notifications
accepted per second, and irx serve's peak RSS (VmHWM of its process, runs not included).

    .venv/bin/python bench/bench_serve.py [--repeat 5] [--storm 400] [--write]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import yaml
from bench_validate import header_lines, load, table, update_results

from irx_testenv import PostgresServer

REPO = Path(__file__).resolve().parents[1]
SECTION = "## irx serve: alert to diagnosis and message"
TOKEN = "bench-token-0123456789abcdef0123"
FIRST_STEP = "max_connections"  # db-pool-exhausted's first diagnose step


class Channel(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.arrived: dict[str, float] = {}  # run id -> arrival of its first message
        self.lock = threading.Lock()


class _Handler(BaseHTTPRequestHandler):
    server: Channel

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", "0"))))
        now = time.time()
        with self.server.lock:
            self.server.arrived.setdefault(body.get("run_id", ""), now)
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


def notification(group: str, status: str = "firing") -> dict[str, Any]:
    labels = {"alertname": group, "severity": "page"}
    return {
        "version": "4", "groupKey": "{}:" + json.dumps({"alertname": group}), "status": status, "receiver": "irx",
        "groupLabels": {"alertname": group}, "commonLabels": labels, "commonAnnotations": {},
        "externalURL": "http://alertmanager.invalid:9093", "truncatedAlerts": 0,
        "alerts": [{"status": status, "labels": labels, "annotations": {}, "startsAt": "2026-12-03T12:00:00Z",
                    "endsAt": "0001-01-01T00:00:00Z", "fingerprint": "0123456789abcdef"}],
    }  # fmt: skip


def ts(value: str) -> float:
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def journal_event(runs_dir: Path, run_id: str | None, match: Any, timeout: float = 120) -> tuple[str, float]:
    """(run id, ts) of the first event that matches, in the run ``run_id`` or the one newest run."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        paths = [runs_dir / run_id / "timeline.jsonl"] if run_id else sorted(runs_dir.glob("*/timeline.jsonl"))
        for path in paths:
            if not path.exists():
                continue
            for line in path.read_text().splitlines():
                try:
                    event = json.loads(line)
                except ValueError:
                    continue  # a line being written
                if match(event):
                    return path.parent.name, ts(event["ts"])
        time.sleep(0.02)
    raise SystemExit(f"no matching journal event within {timeout:g}s in {runs_dir}")


def first_result(event: dict[str, Any]) -> bool:
    return event.get("type") == "step_finished" and event.get("step") == FIRST_STEP


def wait_finished(runs_dir: Path, run_id: str) -> None:
    journal_event(runs_dir, run_id, lambda e: e.get("type") == "run_finished", timeout=180)


class Bench:
    def __init__(self, work: Path, pg: PostgresServer, channel: Channel) -> None:
        self.work, self.channel = work, channel
        self.runs = work / "runs"
        self.seen: set[str] = set()  # runs already timed
        inventory = yaml.safe_load((REPO / "inventories" / "local.yml").read_text())
        inventory["all"]["hosts"]["localhost"]["ansible_python_interpreter"] = sys.executable
        host, port = channel.server_address[:2]
        inventory["all"]["vars"] = {"irx_notify": [{"name": "oncall", "kind": "webhook",
                                                    "url": f"http://{host!s}:{port}/hook"}],
                                    "pg_dsn": pg.dsn}  # fmt: skip
        self.inventory = work / "inventory.yml"
        self.inventory.write_text(yaml.safe_dump(inventory))
        self.env = {
            **os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
            "PYTHONPATH": os.pathsep.join([str(REPO / "engine"), os.environ.get("PYTHONPATH", "")]),
            "IRX_RUNS_DIR": str(self.runs), "IRX_LOCK_DIR": str(work / "locks"), "NO_COLOR": "1",
        }  # fmt: skip
        for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
            self.env.pop(name, None)

    def start_serve(self, max_concurrent: int) -> tuple[subprocess.Popen[bytes], str]:
        routes = self.work / "routes.yaml"
        route = {"name": "pg", "match": ['alertname=~"PgPool.*"'], "playbook": "db-pool-exhausted",
                 "inventory": str(self.inventory), "mode": "diagnose"}  # fmt: skip
        routes.write_text(yaml.safe_dump({"apiVersion": "irx/v1", "kind": "Routes", "max_concurrent": max_concurrent,
                                          "routes": [route]}))  # fmt: skip
        tokens = self.work / "tokens"
        tokens.write_text(TOKEN + "\n")
        tokens.chmod(0o600)
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        state = Path(tempfile.mkdtemp(prefix="serve-", dir=self.work))
        with open(self.work / "serve.log", "ab") as log:
            proc = subprocess.Popen([sys.executable, "-m", "irx", "serve", "--routes", str(routes), "--token-file",
                                     str(tokens), "--port", str(port), "--state-dir", str(state)],
                                    cwd=self.work, env=self.env, stdout=log, stderr=log)  # fmt: skip
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                    return proc, url
            except httpx.TransportError:
                time.sleep(0.05)
        raise SystemExit(f"irx serve did not start: {(self.work / 'serve.log').read_text()}")

    def via_serve(self, client: httpx.Client, url: str, n: int) -> tuple[float, float]:
        body = json.dumps(notification(f"PgPoolExhausted{n}")).encode()
        sent = time.time()
        headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
        answer = client.post(f"{url}/alerts/alertmanager", content=body, headers=headers)
        if answer.status_code != 202 or answer.json()["received"] != "new":
            raise SystemExit(f"irx serve answered {answer.status_code}: {answer.text}")
        run_id, first = journal_event(self.runs, None, lambda e: first_result(e) and e["run_id"] not in self.seen)
        self.seen.add(run_id)
        deadline = time.monotonic() + 60
        while run_id not in self.channel.arrived:
            if time.monotonic() > deadline:
                raise SystemExit(f"no message for run {run_id}")
            time.sleep(0.01)
        wait_finished(self.runs, run_id)
        return first - sent, self.channel.arrived[run_id] - sent

    def by_hand(self) -> float:
        spawned = time.time()
        proc = subprocess.Popen([sys.executable, "-m", "irx", "run", "db-pool-exhausted", "-i", str(self.inventory),
                                 "--dry-run", "--quiet"], cwd=self.work, env=self.env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)  # fmt: skip
        run_id, first = journal_event(self.runs, None, lambda e: first_result(e) and e["run_id"] not in self.seen)
        self.seen.add(run_id)
        proc.wait(180)
        return first - spawned


def storm(url: str, count: int, groups: int, prefix: str) -> float:
    """POST ``count`` notifications over ``groups`` groups from 16 threads; notifications accepted per second."""
    bodies = [json.dumps(notification(f"{prefix}{i % groups}")).encode() for i in range(count)]
    random.Random(14).shuffle(bodies)
    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    with httpx.Client(timeout=60, limits=httpx.Limits(max_connections=16)) as client:

        def post(body: bytes) -> int:
            return client.post(f"{url}/alerts/alertmanager", content=body, headers=headers).status_code

        started = time.monotonic()
        with ThreadPoolExecutor(16) as pool:
            codes = list(pool.map(post, bodies))
        seconds = time.monotonic() - started
    if codes != [202] * count:
        raise SystemExit(f"the storm got answers other than 202: {sorted(set(codes))}")
    return count / seconds


def peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    proc.wait(60)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--storm", type=int, default=400, help="notifications per storm (over a tenth as many groups)")
    parser.add_argument("--write", action="store_true", help=f"update '{SECTION}' in bench/RESULTS.md")
    args = parser.parse_args()
    load_before = load()
    work = Path(tempfile.mkdtemp(prefix="irx-bench-serve-"))
    channel = Channel()
    threading.Thread(target=channel.serve_forever, args=(0.05,), daemon=True).start()
    loads = [load_before]
    try:
        with PostgresServer(max_connections=20, base_dir=work) as pg:
            bench = Bench(work, pg, channel)
            proc, url = bench.start_serve(max_concurrent=2)
            serve_first, serve_message, hand_first = [], [], []
            with httpx.Client(timeout=60) as client:
                bench.via_serve(client, url, -1)  # warm-up, not counted
                bench.by_hand()
                for n in range(args.repeat):
                    for kind in ("serve", "hand") if n % 2 == 0 else ("hand", "serve"):
                        if kind == "serve":
                            first, message = bench.via_serve(client, url, n)
                            serve_first.append(first)
                            serve_message.append(message)
                        else:
                            hand_first.append(bench.by_hand())
                    loads.append(load())
            groups = max(1, args.storm // 10)
            unrouted = storm(url, args.storm, groups, "Unrouted")
            loads.append(load())
            routed = storm(url, args.storm, groups, "PgPoolStorm")
            loads.append(load())
            rss = peak_rss_mib(proc.pid)
            deadline = time.monotonic() + 600  # let the storm's runs finish before PostgreSQL stops
            while time.monotonic() < deadline and len(list(bench.runs.glob("*/timeline.jsonl"))) < (
                2 * args.repeat + 2 + groups
            ):
                time.sleep(1)
            time.sleep(5)
            stop(proc)
    finally:
        channel.shutdown()
        channel.server_close()
    body = render(args, load_before, loads, serve_first, serve_message, hand_first, unrouted, routed, rss)
    print(f"{SECTION}\n\n{body}")
    if args.write:
        update_results(SECTION, body)
    shutil.rmtree(work, ignore_errors=True)
    return 0


def render(args: argparse.Namespace, load_before: float, loads: list[float], serve_first: list[float],
           serve_message: list[float], hand_first: list[float], unrouted: float, routed: float,
           rss: float) -> str:  # fmt: skip
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True,
                            check=False).stdout.strip()  # fmt: skip

    def row(name: str, values: list[float]) -> list[str]:
        return [name, f"{min(values):.2f}", f"{statistics.median(values):.2f}", f"{max(values):.2f}"]

    rows = [
        row("POST -> first diagnostic result (irx serve)", serve_first),
        row("POST -> first message at the channel (irx serve)", serve_message),
        row("spawn -> first diagnostic result (`irx run --dry-run` by hand)", hand_first),
    ]
    lines = header_lines(["irx"], load_before)
    lines += [
        f"Commit {commit}. 1-minute load average during the repetitions: {', '.join(f'{x:.2f}' for x in loads)}.",
        "",
        f"{args.repeat} interleaved repetitions after one warm-up of each. `db-pool-exhausted` in mode diagnose on "
        "the local inventory against a throwaway PostgreSQL 15 (max_connections 20, idle); the channel is a webhook "
        "receiver on loopback. Times from the POST's send time (or the process spawn) to the journal's "
        f"`step_finished` of `{FIRST_STEP}` and to the first message's arrival.",
        "",
        table(["path", "min (s)", "median (s)", "max (s)"], rows),
        "",
        f"Storm: {args.storm} notifications over {max(1, args.storm // 10)} groups, 16 client threads, repeats "
        f"interleaved: **{unrouted:.0f}/s** accepted for groups no route matches (recorded, no run), "
        f"**{routed:.0f}/s** for routed groups (each opens an incident and starts a run, at most 2 at once, while "
        f"the storm lasts). irx serve's peak RSS (VmHWM, its own process): **{rss:.0f} MiB**. Every request got 202.",
        "",
        "Only wall times: a POST-to-journal latency spans several processes (serve, the run, Ansible), so there is "
        "no one child's CPU time to report; with the load this high read the medians as upper bounds and compare "
        "rows of the same run. The first message waits for the whole diagnosis (5 steps), by design; a run typed "
        "by hand in a dry run sends no message, so it has no message row.",
        "",
        "No reference tool does this job here: ansible-rulebook (Event-Driven Ansible) needs Java and drools, not "
        "installable offline; the reference point is the same playbook started by hand with `irx run`.",
        "",
        "Reproduce: `.venv/bin/python bench/bench_serve.py --write`.",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())

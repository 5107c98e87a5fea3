"""The HTML report in a real headless Chromium: it renders, its lanes and bars are in the DOM, it paints.

Debian's ``chromium`` (``scripts/install-system-deps.sh``); a missing browser fails the test, never skips it.
"""

from __future__ import annotations

import shutil
import struct
import subprocess
import time
import zlib
from collections import Counter
from html.parser import HTMLParser
from pathlib import Path

import pytest

from irx.redact import Redactor
from irx.report.html import render
from irx.report.model import build_report
from irx.timeline import Journal, read_journal

pytestmark = pytest.mark.integration

CHROMIUM = "/usr/bin/chromium"
TIMEOUT = 90  # seconds per browser run; a cold start takes a few seconds
OK_GREEN = (0x2F, 0x9E, 0x5A)  # the CSS colours of ok and failed bars
FAILED_RED = (0xD6, 0x45, 0x45)


def write_journal(runs_dir: Path) -> Path:
    """A real journal of a short run: two hosts, a failed diagnostic, a decision, an approved restart."""
    with Journal.create(runs_dir, "20261122T110944Z-b0a1c2", Redactor(["hunter2"])) as journal:
        journal.event(
            "run_started",
            playbook="db-pool-exhausted",
            playbook_path="playbooks/db-pool-exhausted.yaml",
            title="PostgreSQL connection pool exhausted",
            severity="SEV2",
            inventory="ssh-test",
            mode="run",
            operator="alice@laptop",
            plan_hash="sha256:0f3a",
            params={"pg_dsn": "postgresql://app:hunter2@db1/app"},
            hosts=["web1", "db1"],
            irx_version="0.1.0",
            forced_lock=False,
        )
        step(journal, "diagnose", "connections", {"web1": ("ok", 0.3), "db1": ("failed", 0.5)})
        journal.event("decision", phase="mitigate", step="restart", decision="run", reason="when: true")
        journal.event(
            "approval", phase="mitigate", step="restart", approved=True, by="alice@laptop", method="tty", plan_hash="x"
        )
        step(journal, "mitigate", "restart", {"web1": ("ok", 0.6)}, stdout="<script>alert(1)</script>")
        step(journal, "verify", "health", {"web1": ("timed_out", 0.3), "db1": ("ok", 0.2)})
        journal.event("run_finished", status="failed", exit_code=1, duration=1.5, reason="verification failed")
    return journal.path


def step(journal: Journal, phase: str, name: str, results: dict[str, tuple[str, float]], stdout: str = "") -> None:
    journal.event("phase_started", phase=phase, again=False)
    hosts = list(results)
    journal.event(
        "step_started",
        phase=phase,
        step=name,
        action="shell",
        summary=f"run {name}",
        hosts=hosts,
        mutating=phase == "mitigate",
        approval_required=phase == "mitigate",
    )
    began = time.monotonic()
    for host, (status, seconds) in sorted(results.items(), key=lambda item: item[1][1]):
        time.sleep(max(began + seconds - time.monotonic(), 0))
        journal.event(
            "host_result", phase=phase, step=name, host=host, status=status, duration=seconds, stdout=stdout or status
        )
    statuses = {status for status, _ in results.values()}
    overall = "ok" if statuses == {"ok"} else next(iter(statuses - {"ok"}))
    journal.event("step_finished", phase=phase, step=name, status=overall, duration=time.monotonic() - began)
    journal.event("phase_finished", phase=phase, status=overall, again=False)


def chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    assert shutil.which(CHROMIUM), f"{CHROMIUM} is missing: run scripts/install-system-deps.sh"
    command = [
        CHROMIUM,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--hide-scrollbars",
        f"--user-data-dir={tmp_path / 'chromium-profile'}",
        *args,
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT, check=False)
    assert done.returncode == 0, f"chromium exited {done.returncode}:\n{done.stderr[-3000:]}"
    return done


class Dom(HTMLParser):
    """The attributes of every element of a serialised DOM."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.elements: list[dict[str, str]] = []
        self.feed(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append({"tag": tag, **{name: value or "" for name, value in attrs}})

    def with_class(self, name: str) -> list[dict[str, str]]:
        return [element for element in self.elements if name in element.get("class", "").split()]


def png_pixels(data: bytes) -> tuple[int, int, list[bytes]]:
    """Width, height and the unfiltered RGB(A) rows of an 8-bit truecolour PNG (what Chromium writes)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    offset, idat, header = 8, bytearray(), b""
    while offset < len(data):
        (length,) = struct.unpack(">I", data[offset : offset + 4])
        kind, body = data[offset + 4 : offset + 8], data[offset + 8 : offset + 8 + length]
        if kind == b"IHDR":
            header = body
        elif kind == b"IDAT":
            idat += body
        offset += 12 + length
    width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", header)
    assert (depth, colour, interlace) in {(8, 2, 0), (8, 6, 0)}, f"unexpected PNG format {depth=} {colour=}"
    size = 3 if colour == 2 else 4
    raw, stride = zlib.decompress(bytes(idat)), width * size
    rows: list[bytes] = []
    previous = bytearray(stride)
    for y in range(height):
        kind, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1 : (y + 1) * (stride + 1)])
        if kind == 2:
            line = bytearray((a + b) & 0xFF for a, b in zip(line, previous, strict=True))
        elif kind in {1, 3, 4}:
            for i in range(stride):
                left = line[i - size] if i >= size else 0
                up = previous[i]
                if kind == 1:
                    line[i] = (line[i] + left) & 0xFF
                elif kind == 3:
                    line[i] = (line[i] + (left + up) // 2) & 0xFF
                else:
                    corner = previous[i - size] if i >= size else 0
                    line[i] = (line[i] + paeth(left, up, corner)) & 0xFF
        rows.append(bytes(line))
        previous = line
    return width, height, [row if size == 3 else bytes(b for i, b in enumerate(row) if i % 4 != 3) for row in rows]


def paeth(a: int, b: int, c: int) -> int:
    p = a + b - c
    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
    return a if pa <= pb and pa <= pc else b if pb <= pc else c


def test_report_renders_in_chromium(tmp_path: Path) -> None:
    read = read_journal(write_journal(tmp_path / "runs"))
    assert read.problems == []
    page = tmp_path / "report.html"
    page.write_text(render(build_report(read)), encoding="utf-8")

    dom = Dom(chromium(tmp_path, "--dump-dom", page.as_uri()).stdout)
    lanes = [lane["data-lane"] for lane in dom.with_class("lane")]
    assert lanes == ["phase:diagnose", "phase:mitigate", "phase:verify", "host:web1", "host:db1"]
    found = {(bar["data-step"], bar["data-host"], bar["data-status"]) for bar in dom.with_class("bar")}
    assert found == {
        ("connections", "", "failed"),
        ("restart", "", "ok"),
        ("health", "", "timed_out"),
        ("connections", "web1", "ok"),
        ("connections", "db1", "failed"),
        ("restart", "web1", "ok"),
        ("health", "web1", "timed_out"),
        ("health", "db1", "ok"),
    }
    assert [marker["data-kind"] for marker in dom.with_class("marker")] == ["decision", "approval"]
    assert not [element for element in dom.elements if element["tag"] == "script"], "journal text became a script"

    # The window is taller than the whole report (about 1,250 px here), so the host lanes at its foot are in the
    # picture whatever the fonts or the wrapping of the header do; the last rows must be bare page background.
    shot = tmp_path / "report.png"
    chromium(tmp_path, f"--screenshot={shot}", "--window-size=1280,2000", page.as_uri())
    width, height, rows = png_pixels(shot.read_bytes())
    assert (width, height) == (1280, 2000)
    assert len(set(rows[-1])) <= 3, "the report is taller than the window: its foot is cut off"
    colours = Counter(tuple(row[i : i + 3]) for row in rows[::4] for i in range(0, len(row), 12))
    assert len(colours) > 50, f"the screenshot looks blank: {len(colours)} colours"
    assert colours[OK_GREEN] > 20, "no ok bar painted"
    assert colours[FAILED_RED] > 20, "no failed bar painted"

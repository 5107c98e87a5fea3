"""What an editor shows on a broken playbook: the real yaml-language-server (scripts/install-system-deps.sh
installs the pinned version from npm), spoken to over stdio LSP by a small JSON-RPC client, with irx's schema
found through the playbook's line-1 modeline; and ``irx validate`` reports the same problems at the same
positions.
"""

from __future__ import annotations

import json
import os
import queue
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import pytest

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
IRX = [sys.executable, "-m", "irx.cli"]


class LanguageServer:
    """JSON-RPC 2.0 over stdio with LSP's Content-Length framing; answers the server's own requests."""

    def __init__(self, command: list[str], settings: dict[str, Any], log: Path) -> None:
        self.log = log
        with log.open("wb") as stderr:  # a file, not a pipe nobody reads: the server's logging cannot block it
            self.process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=stderr)
        self.settings = settings
        self.messages: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self.next_id = 0
        assert self.process.stdout is not None
        self.reader = threading.Thread(target=self._read, args=(self.process.stdout,), daemon=True)
        self.reader.start()

    def _read(self, stream: IO[bytes]) -> None:
        while True:
            headers: dict[str, str] = {}
            while True:
                line = stream.readline()
                if not line:
                    self.messages.put(None)
                    return
                text = line.decode("ascii").strip()
                if not text:
                    break
                name, _, value = text.partition(":")
                headers[name.lower()] = value.strip()
            self.messages.put(json.loads(stream.read(int(headers["content-length"]))))

    def send(self, message: dict[str, Any]) -> None:
        body = json.dumps({"jsonrpc": "2.0", **message}).encode()
        assert self.process.stdin is not None
        self.process.stdin.write(b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
        self.process.stdin.flush()

    def request(self, method: str, params: dict[str, Any]) -> int:
        self.next_id += 1
        self.send({"id": self.next_id, "method": method, "params": params})
        return self.next_id

    def notify(self, method: str, params: dict[str, Any]) -> None:
        self.send({"method": method, "params": params})

    def receive(self, deadline: float) -> Iterator[dict[str, Any]]:
        """Messages until ``deadline``; the server's requests are answered on the way (configuration)."""
        while (left := deadline - time.monotonic()) > 0:
            try:
                message = self.messages.get(timeout=left)
            except queue.Empty:
                return
            if message is None:
                raise AssertionError(f"the language server exited: {self.log.read_text()[-2000:]}")
            if "method" in message and "id" in message:  # a request from the server
                items = (message.get("params") or {}).get("items", [])
                result = [self.settings if i.get("section") == "yaml" else None for i in items] or None
                self.send({"id": message["id"], "result": result})
                continue
            yield message

    def close(self) -> None:
        try:
            shutdown = self.request("shutdown", {})
            for message in self.receive(time.monotonic() + 10):
                if message.get("id") == shutdown:
                    break
            self.notify("exit", {})
            self.process.wait(timeout=10)
        finally:
            if self.process.poll() is None:
                self.process.kill()
                self.process.wait()
            self.reader.join(timeout=10)
            for stream in (self.process.stdin, self.process.stdout):
                if stream is not None:
                    stream.close()


def editor_diagnostics(path: Path) -> list[dict[str, Any]]:
    """The diagnostics yaml-language-server publishes for ``path`` once it has checked it against its schema."""
    binary = shutil.which("yaml-language-server")
    assert binary, "yaml-language-server is not installed: run scripts/install-system-deps.sh (npm, pinned)"
    settings = {"validate": True, "schemaStore": {"enable": False}, "hover": False, "completion": False}
    server = LanguageServer([binary, "--stdio"], settings, path.parent.parent / "yaml-language-server.log")
    try:
        init = server.request(
            "initialize",
            {
                "processId": os.getpid(),
                "rootUri": path.parent.parent.as_uri(),
                "capabilities": {"workspace": {"configuration": True}, "textDocument": {"publishDiagnostics": {}}},
            },
        )
        assert any(m.get("id") == init for m in server.receive(time.monotonic() + 60)), "no initialize answer"
        server.notify("initialized", {})
        server.notify("workspace/didChangeConfiguration", {"settings": {"yaml": settings}})
        uri = path.as_uri()
        document = {"uri": uri, "languageId": "yaml", "version": 1, "text": path.read_text()}
        server.notify("textDocument/didOpen", {"textDocument": document})
        for message in server.receive(time.monotonic() + 60):
            params = message.get("params") or {}
            published = message.get("method") == "textDocument/publishDiagnostics" and params.get("uri") == uri
            if published and params["diagnostics"]:  # the first may be the empty one before the schema loaded
                return list(params["diagnostics"])
        raise AssertionError("yaml-language-server published no diagnostics within 60 s")
    finally:
        server.close()


def broken_playbook(root: Path) -> tuple[Path, dict[str, tuple[int, int]]]:
    """high-cpu with five schema mistakes, in a checkout layout (so its modeline finds ../schemas), and where
    each is (1-based line and column, as irx and an editor's status bar show them)."""
    (root / "playbooks").mkdir(parents=True)
    shutil.copytree(REPO / "schemas", root / "schemas")
    text = (REPO / "playbooks" / "high-cpu.yaml").read_text()
    for old, new in [
        ("apiVersion: irx/v1", "apiVersion: irx/v2"),
        ("  title: High CPU usage on application hosts\n", ""),
        ("  severity: SEV3", "  severity: SEV9"),
        ("    serial: 1\n", "    serial: 1\n    colour: red\n"),
        ("    retries: 6\n", "    retries: many\n"),
    ]:
        assert old in text
        text = text.replace(old, new, 1)
    path = root / "playbooks" / "high-cpu.yaml"
    path.write_text(text)
    lines = text.splitlines()

    def at(line_text: str, column_of: str) -> tuple[int, int]:
        index = lines.index(line_text)
        return index + 1, line_text.index(column_of) + 1

    return path, {
        "schema-const": at("apiVersion: irx/v2", "irx/v2"),
        "schema-required": at("metadata:", "metadata"),  # the mapping that misses title, marked at its key
        "schema-enum": at("  severity: SEV9", "SEV9"),
        "schema-unknown-key": at("    colour: red", "colour"),
        "schema-type": at("    retries: many", "many"),
    }


def test_the_editor_and_irx_validate_show_the_same_problems_at_the_same_places(tmp_path: Path) -> None:
    path, expected = broken_playbook(tmp_path / "repo")
    assert path.read_text().startswith("# yaml-language-server: $schema=../schemas/playbook.schema.json\n")

    diagnostics = editor_diagnostics(path)
    shown = sorted((d["range"]["start"]["line"] + 1, d["range"]["start"]["character"] + 1) for d in diagnostics)
    assert shown == sorted(expected.values()), json.dumps(diagnostics, indent=1)
    assert all(d.get("severity") == 1 for d in diagnostics)  # errors, as irx calls them
    assert all("irx incident playbook" in d.get("source", "") for d in diagnostics)  # from irx's schema
    by_place = {(d["range"]["start"]["line"] + 1, d["range"]["start"]["character"] + 1): d for d in diagnostics}
    assert "title" in by_place[expected["schema-required"]]["message"]
    assert "colour" in by_place[expected["schema-unknown-key"]]["message"]

    result = subprocess.run(
        [*IRX, "validate", "--format", "json", str(path)], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 1
    errors = [p for p in json.loads(result.stdout)["problems"] if p["level"] == "error"]
    assert sorted((p["line"], p["column"]) for p in errors) == sorted(expected.values())
    assert {p["rule"]: (p["line"], p["column"]) for p in errors} == expected

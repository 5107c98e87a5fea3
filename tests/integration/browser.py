"""A real headless Chromium driven over the DevTools protocol, with nothing to download.

Chromium's ``--remote-debugging-pipe`` speaks CDP over file descriptors 3 (commands in) and 4 (replies and
events out), one JSON message per NUL-terminated frame, so the standard library is the whole client: no
websocket package, no Playwright browser download. Input is the browser's own: ``click`` is a mouse press
and release at the element's centre (``Input.dispatchMouseEvent``), ``type`` inserts text where the focus is
(``Input.insertText``), as a person's would be; ``evaluate`` only reads the page.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import select
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

CHROMIUM = "/usr/bin/chromium"


class BrowserError(AssertionError):
    pass


class Browser:
    """One Chromium process; ``tab()`` opens a page in it. Use as a context manager."""

    def __init__(self, profile: Path, timeout: float = 30) -> None:
        assert shutil.which(CHROMIUM), f"{CHROMIUM} is missing: run scripts/install-system-deps.sh"
        self.timeout = timeout
        commands_r, self._commands = os.pipe()
        self._replies, replies_w = os.pipe()
        # Above 10 in this process, so that moving them to 3 and 4 in the child never clobbers one with the other.
        child_r, child_w = fcntl.fcntl(commands_r, fcntl.F_DUPFD, 10), fcntl.fcntl(replies_w, fcntl.F_DUPFD, 10)
        os.close(commands_r)
        os.close(replies_w)

        def _fds() -> None:
            os.dup2(child_r, 3)
            os.dup2(child_w, 4)

        self.log = profile.parent / f"{profile.name}.log"
        with open(self.log, "w") as log:
            self.proc = subprocess.Popen(
                [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--remote-debugging-pipe", f"--user-data-dir={profile}", "about:blank"],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, pass_fds=(3, 4), preexec_fn=_fds,
            )  # fmt: skip
        os.close(child_r)
        os.close(child_w)
        self._buffer = b""
        self._next_id = 0
        self.events: list[dict[str, Any]] = []

    def __enter__(self) -> Browser:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(BrowserError, OSError):
                self.send("Browser.close")
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        for fd in (self._commands, self._replies):
            with contextlib.suppress(OSError):
                os.close(fd)

    def send(self, method: str, params: dict[str, Any] | None = None, session: str | None = None) -> dict[str, Any]:
        """One CDP command; its result (``BrowserError`` on a protocol error or no answer in time)."""
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        os.write(self._commands, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + self.timeout
        while True:
            reply = self._read(deadline)
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise BrowserError(f"{method}: {reply['error']}")
                return dict(reply.get("result", {}))
            self.events.append(reply)

    def _read(self, deadline: float) -> dict[str, Any]:
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0 or self.proc.poll() is not None:
                raise BrowserError(
                    f"no answer from chromium (exit {self.proc.poll()}):\n{self.log.read_text()[-2000:]}"
                )
            ready, _, _ = select.select([self._replies], [], [], min(left, 1.0))
            if ready:
                chunk = os.read(self._replies, 1 << 20)
                if not chunk:
                    raise BrowserError(f"chromium closed its pipe:\n{self.log.read_text()[-2000:]}")
                self._buffer += chunk
        frame, _, self._buffer = self._buffer.partition(b"\0")
        return dict(json.loads(frame))

    def tab(self) -> Tab:
        target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        tab = Tab(self, session)
        tab.send("Page.enable")
        tab.send("Runtime.enable")
        return tab


class Tab:
    """One page of the browser."""

    def __init__(self, browser: Browser, session: str) -> None:
        self.browser, self.session = browser, session

    def send(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        return self.browser.send(method, params, self.session)

    def open(self, url: str) -> None:
        """Navigate to ``url`` and wait until the page (after any redirects) has loaded."""
        answer = self.send("Page.navigate", {"url": url})
        if answer.get("errorText"):
            raise BrowserError(f"{url}: {answer['errorText']}")
        self.wait_for("document.readyState === 'complete' && location.href !== 'about:blank'")

    def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression in the page (read-only use: asserts look, they never act)."""
        answer = self.send("Runtime.evaluate", {"expression": expression, "returnByValue": True, "awaitPromise": True})
        if "exceptionDetails" in answer:
            raise BrowserError(f"{expression}: {answer['exceptionDetails'].get('text')}")
        return answer.get("result", {}).get("value")

    def wait_for(self, expression: str, timeout: float = 30) -> Any:
        deadline = time.monotonic() + timeout
        while True:
            try:
                value = self.evaluate(expression)
            except BrowserError:  # the page is between documents (a navigation): ask again
                value = None
            if value:
                return value
            if time.monotonic() > deadline:
                where = self.evaluate("location.href + '\\n' + (document.body?.innerText ?? '')")
                raise BrowserError(f"never true within {timeout:g}s: {expression}\nat {where}")
            time.sleep(0.1)

    def text(self, selector: str) -> str:
        return str(self.evaluate(f"document.querySelector({json.dumps(selector)})?.textContent ?? ''"))

    def click(self, selector: str) -> None:
        """A real mouse click at the centre of the element ``selector`` names (of its first line, for a link that
        wraps), scrolled into view first."""
        box = self.wait_for(
            f"(() => {{ const e = document.querySelector({json.dumps(selector)}); if (!e) return null;"
            " e.scrollIntoView({block: 'center'}); const r = e.getClientRects()[0];"
            " return r && r.width > 0 ? [r.x + r.width / 2, r.y + r.height / 2] : null; })()"
        )
        self.send("Input.dispatchMouseEvent", {"type": "mouseMoved", "x": box[0], "y": box[1]})
        for kind in ("mousePressed", "mouseReleased"):
            self.send("Input.dispatchMouseEvent",
                      {"type": kind, "x": box[0], "y": box[1], "button": "left", "clickCount": 1})  # fmt: skip

    def type(self, selector: str, text: str) -> None:
        """Click into the field ``selector`` names and type ``text`` there."""
        self.click(selector)
        self.wait_for(f"document.activeElement === document.querySelector({json.dumps(selector)})")
        self.send("Input.insertText", {"text": text})

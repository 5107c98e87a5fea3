"""``http`` steps: one request from the control node with httpx, checked against ``expect``."""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from typing import Any

from irx.executors.base import LOCAL_HOST
from irx.model import parse_duration
from irx.results import HostResult

BODY_CAP = 64 * 1024


def _json_path(document: Any, dotted: str) -> Any:
    current = document
    for part in dotted.split("."):
        if isinstance(current, Mapping) and part in current:
            current = current[part]
        elif isinstance(current, list) and part.isdecimal() and part.isascii() and int(part) < len(current):
            current = current[int(part)]
        else:
            raise KeyError(dotted)
    return current


def _same(got: Any, wanted: Any) -> bool:
    """JSON equality: true is not 1 and false is not 0 (Python's == says they are), at any depth."""
    if isinstance(got, bool) or isinstance(wanted, bool):
        return isinstance(got, bool) and isinstance(wanted, bool) and got == wanted
    if isinstance(got, Mapping) and isinstance(wanted, Mapping):
        return got.keys() == wanted.keys() and all(_same(got[k], wanted[k]) for k in got)
    if isinstance(got, list) and isinstance(wanted, list):
        return len(got) == len(wanted) and all(_same(a, b) for a, b in zip(got, wanted, strict=True))
    return bool(got == wanted)


def check_expectations(spec: Mapping[str, Any], status: int, body: str, document: Any) -> str | None:
    """Why the response does not meet ``expect`` (None when it does)."""
    expect = spec.get("expect") or {}
    wanted = expect.get("status")
    if wanted is None:
        if not 200 <= status < 300:
            return f"status {status}, expected 2xx"
    else:
        allowed = wanted if isinstance(wanted, list) else [wanted]
        if status not in allowed:
            return f"status {status}, expected {' or '.join(map(str, allowed))}"
    for dotted, value in (expect.get("json") or {}).items():
        try:
            got = _json_path(document, dotted)
        except KeyError:
            return f"JSON field {dotted} is missing"
        if not _same(got, value):
            return f"JSON field {dotted} is {got!r}, expected {value!r}"
    pattern = expect.get("body")
    if pattern and not re.search(pattern, body):
        return f"body does not match /{pattern}/"
    return None


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def run_http(spec: Mapping[str, Any], client: Any = None) -> HostResult:
    """Perform the (already rendered) request; a network error or unmet expectation is a failed result."""
    import httpx

    method = spec.get("method", "GET")
    timeout = parse_duration(spec["timeout"]) if "timeout" in spec else 10.0
    started = time.monotonic()
    owned = client is None
    client = client or httpx.Client(verify=spec.get("verify_tls", True), follow_redirects=False)
    try:
        response = client.request(
            method,
            spec["url"],
            headers=spec.get("headers"),
            content=spec.get("body"),
            json=spec.get("json"),
            timeout=timeout,
        )
    except httpx.TimeoutException:
        return HostResult(
            LOCAL_HOST,
            "timed_out",
            msg=f"{method} {spec['url']}: no answer within {timeout:g}s",
            duration=time.monotonic() - started,
        )
    except httpx.HTTPError as exc:
        return HostResult(
            LOCAL_HOST, "failed", msg=f"{method} {spec['url']}: {exc}", duration=time.monotonic() - started
        )
    except (httpx.InvalidURL, httpx.UnsupportedProtocol, UnicodeError, ValueError, TypeError) as exc:
        # A request that cannot even be built (a URL idna refuses, a control character, a header that is not
        # ASCII) is this step's failure, not irx's: the run goes on under its on_failure.
        return HostResult(
            LOCAL_HOST,
            "failed",
            msg=f"{method} {spec['url']!r}: cannot make this request: {_one_line(exc)}",
            duration=time.monotonic() - started,
        )
    finally:
        if owned:
            client.close()
    duration = time.monotonic() - started
    body = response.text[:BODY_CAP]
    try:
        document = response.json()
    except (ValueError, RecursionError):  # not JSON, or nested deeper than Python can parse: not JSON to irx
        document = None
    problem = check_expectations(spec, response.status_code, body, document)
    return HostResult(
        LOCAL_HOST,
        "failed" if problem else "ok",
        rc=None,
        stdout=body,
        msg=problem or "",
        duration=duration,
        extra={"status_code": response.status_code, "json": document, "body": body, "elapsed": round(duration, 3)},
    )

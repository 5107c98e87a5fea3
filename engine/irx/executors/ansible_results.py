"""What Ansible registered for one host, as a HostResult: output capped, the failure told in one line, and a
hint when a step failed for want of privileges."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from irx.results import HostResult

# Output kept in memory per host result, for parse: and templates. The journal keeps less (its own cap,
# recorded there); this must stay above it so the journal sees and records any cut.
OUTPUT_CAP = 1024 * 1024


def host_result(host: str, res: Mapping[str, Any] | None, duration: float) -> HostResult:
    """A HostResult from Ansible's registered result for one host."""
    if not res:
        return HostResult(host, "failed", msg="no result from Ansible", duration=duration)
    stdout, stdout_cut = _cap(res.get("stdout"))
    # A module that died before answering (or a become that failed) leaves its words in module_stderr.
    stderr, stderr_cut = _cap(res.get("stderr") if res.get("stderr") is not None else res.get("module_stderr"))
    if res.get("unreachable"):
        status = "unreachable"
    elif res.get("timedout") or res.get("timed_out"):  # Ansible's task timeout | irx_command's own
        status = "timed_out"
    elif res.get("failed"):
        status = "failed"
    else:
        status = "ok"
    msg = str(res.get("msg") or "")
    if status == "failed" and res.get("rc") not in (None, 0):
        # "non-zero return code" says nothing; the first line of what the command said does.
        last = (stderr.strip() or stdout.strip()).splitlines()[:1] or [msg]
        msg = f"rc {res.get('rc')}: {last[0].strip()}"
    extra: dict[str, Any] = {}
    found = res.get("truncated")
    cut_on_host: Mapping[str, Any] = found if isinstance(found, Mapping) else {}
    stdout_cut = stdout_cut or bool(cut_on_host.get("stdout"))  # irx_command stopped keeping bytes there
    stderr_cut = stderr_cut or bool(cut_on_host.get("stderr"))
    if stdout_cut or stderr_cut:
        extra["truncated"] = {"stdout": stdout_cut, "stderr": stderr_cut, "cap": OUTPUT_CAP}
    if "stdout" not in res and status == "ok":  # a module's own return values are its data
        extra["module"] = {
            k: v for k, v in res.items() if k not in {"invocation", "changed", "failed", "_ansible_no_log"}
        }
    lease = res.get("irx_lease")
    if isinstance(lease, Mapping):  # the host's lease, taken in the same module run (irx.lease: ahead)
        extra["lease"] = dict(lease)
    if res.get("shell") and res.get("pipefail") is False:  # a host without bash, whose sh has no pipefail
        extra["pipefail"] = False
    return HostResult(
        host=host,
        status=status,
        rc=res.get("rc"),
        stdout=stdout,
        stderr=stderr,
        msg=msg if status != "ok" else "",
        changed=bool(res.get("changed")),
        duration=duration,
        extra=extra,
    )


# What sudo (through Ansible's become plugin) and a denied command say, and what irx tells the operator.
_BECOME_FAILURES = (
    (("missing sudo password", "a password is required", "a terminal is required"),
     "sudo there needs a password: give --ask-become-pass or --become-password-file, or set "
     "ansible_become_password (vault-encrypted) for the host"),
    (("incorrect sudo password", "sorry, try again", "incorrect password"),
     "sudo there refused the become password"),
    (("is not in the sudoers file", "is not allowed to run sudo", "not allowed to execute"),
     "the SSH user may not use sudo there (sudoers)"),
)  # fmt: skip
_DENIED = ("permission denied", "operation not permitted", "access denied", "must be root", "are not allowed",
           "interactive authentication required", "only root can", "requires superuser", "eacces", "eperm")  # fmt: skip


def privilege_hint(result: HostResult, become: bool) -> HostResult:
    """A failure for lack of privilege, said plainly: a become that sudo refused, or a step without become
    that the host denied (the step may need ``become: true``)."""
    if result.status != "failed":
        return result
    lines = [line.strip() for line in f"{result.msg}\n{result.stderr}".splitlines() if line.strip()]
    said = "\n".join(lines).lower()
    if become:
        for needles, meaning in _BECOME_FAILURES:
            for line in lines:  # quote the line that says it (sudo's other warnings are noise here)
                if any(needle in line.lower() for needle in needles):
                    return dataclasses.replace(result, msg=f"become failed: {meaning} ({line})")
        return result
    if any(needle in said for needle in _DENIED):
        hint = "permission denied as the SSH user; if the step needs root, declare become: true"
        return dataclasses.replace(result, msg=f"{result.msg} ({hint})")
    return result


def _cap(value: Any) -> tuple[str, bool]:
    text = "" if value is None else str(value)
    if len(text) <= OUTPUT_CAP:
        return text, False
    return text[:OUTPUT_CAP], True

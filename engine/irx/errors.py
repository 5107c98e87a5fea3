"""The one error tree of irx and its exit codes.

Every user-facing failure is an ``IrxError`` subclass carrying its exit code; the CLI catches them once,
prints one line and exits with ``exit_code``. Nothing below the CLI calls ``sys.exit``.
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """Documented process exit codes (README, ``irx --help``)."""

    OK = 0  # success: clean validation, plan produced, run verified
    FAILED = 1  # problems found (validate) or the playbook failed (run)
    USAGE = 2  # bad command line, unknown playbook, invalid playbook/inventory/params
    INTERNAL = 3  # a bug in irx: the traceback is written to a file, not the terminal
    AWAITING_APPROVAL = 4  # the run stopped at an approval gate nobody answered
    INTERRUPTED = 130  # Ctrl-C / SIGTERM: stopped cleanly, everything recorded


class IrxError(Exception):
    """A failure the user can act on; ``str(err)`` is the one-line message."""

    exit_code: ExitCode = ExitCode.USAGE


class UsageError(IrxError):
    """Bad command-line input: unknown playbook, malformed -e, missing file."""


class PlaybookError(IrxError):
    """A playbook that does not load or validate."""


class InventoryError(IrxError):
    """An inventory that is missing or malformed, or a pattern that matches nothing."""


class ParamError(IrxError):
    """A parameter value that is missing, of the wrong type or out of bounds."""


class TemplateError(IrxError):
    """A template that fails to render: undefined name, sandbox refusal, syntax."""

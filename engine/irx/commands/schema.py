"""``irx schema``: print the playbook JSON Schema (draft 2020-12)."""

from __future__ import annotations

import sys

from irx.errors import ExitCode


def main() -> int:
    from irx.loader import schema_text

    sys.stdout.write(schema_text())
    return ExitCode.OK

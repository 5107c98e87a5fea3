"""``irx hash-password``: a password hash for an approvers file, from a password never put on a command line."""

from __future__ import annotations

import sys

import click

from irx.errors import ExitCode, UsageError


def main(interactive: bool | None = None) -> int:
    """Read the password (twice on a terminal, else one line of stdin) and print its scrypt hash. Exit 0, or
    2 when the two do not match or it is empty."""
    from irx.approvers import hash_password

    if interactive is None:
        interactive = sys.stdin.isatty()
    if interactive:
        password = str(click.prompt("Password", hide_input=True, err=True))
        if password != click.prompt("Again", hide_input=True, err=True):
            raise UsageError("the two passwords differ: nothing printed")
    else:
        password = sys.stdin.readline().rstrip("\r\n")
    if not password:
        raise UsageError("an empty password: nothing printed")
    click.echo(hash_password(password))
    return ExitCode.OK

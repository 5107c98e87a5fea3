"""``python -m irx_testenv``: bring a test service up by hand, or list and remove leftovers.

    python -m irx_testenv up pg|redis|nginx|ssh [--base-dir D] [--port P] [--uid U]
                             [--hosts a,b,c] [--subnet NET] [--group G] [--env K=V ...]
    python -m irx_testenv status [--uid UID]     # exit 1 when anything is left over
    python -m irx_testenv down [--uid UID]       # remove leftovers of crashed runs

``up`` stays in the foreground, prints the service's connection details as JSON, and stops the service
on Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import tempfile
import threading
from collections.abc import Sequence
from typing import Any

from irx_testenv import (
    NginxServer,
    PostgresServer,
    RedisServer,
    SshHosts,
    TestEnvError,
    leftovers,
    remove_leftovers,
)
from irx_testenv._service import _Service

_DESCRIPTION = "Start irx's real test services by hand, or list and remove what crashed runs left."


def _details(service: _Service) -> dict[str, Any]:
    info: dict[str, Any] = {"uid": service.uid, "workdir": str(service.workdir)}
    if isinstance(service, PostgresServer):
        info |= {"port": service.port, "dsn": service.dsn, "log": str(service.log_path)}
    elif isinstance(service, RedisServer):
        info |= {"port": service.port, "url": service.url}
    elif isinstance(service, NginxServer):
        info |= {
            "port": service.port,
            "health_url": service.health_url,
            "access_log": str(service.access_log),
        }
    elif isinstance(service, SshHosts):
        info |= {
            "inventory": str(service.inventory_path),
            "key": str(service.key_path),
            "hosts": {name: host.address for name, host in service.hosts.items()},
        }
    return info


def _up(args: argparse.Namespace) -> int:
    base = args.base_dir or tempfile.mkdtemp(prefix="irx-testenv-")
    service: _Service
    if args.kind == "pg":
        service = PostgresServer(args.port, args.max_connections, base, uid=args.uid)
    elif args.kind == "redis":
        service = RedisServer(args.port, base, args.maxmemory, uid=args.uid)
    elif args.kind == "nginx":
        service = NginxServer(args.port, base, uid=args.uid)
    else:
        env = dict(item.partition("=")[::2] for item in args.env)
        service = SshHosts(args.hosts.split(","), base, args.subnet, group=args.group, uid=args.uid, session_env=env)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    with service:
        print(json.dumps(_details(service), indent=2), flush=True)
        stop.wait()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit code (0 ok, 1 leftovers found or an error)."""
    parser = argparse.ArgumentParser(prog="python -m irx_testenv", description=_DESCRIPTION)
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="start one service in the foreground until Ctrl-C")
    up.add_argument("kind", choices=["pg", "redis", "nginx", "ssh"])
    up.add_argument("--base-dir", help="parent directory (default: a new temporary one)")
    up.add_argument("--port", type=int, help="TCP port on 127.0.0.1 (default: a free one)")
    up.add_argument("--max-connections", type=int, default=20)
    up.add_argument("--maxmemory", help="redis maxmemory, e.g. 8mb")
    up.add_argument("--hosts", default="web1,web2,db1", help="comma-separated SSH host names")
    up.add_argument("--subnet", help="inside 10.200.0.0/16 (default: a free /24)")
    up.add_argument("--group", default="testhosts", help="inventory group of the SSH hosts")
    up.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="K=V",
        help="environment of SSH sessions ({host}: the host's name); repeatable",
    )
    up.add_argument("--uid", help="six hex digits in every name (default: random)")
    for name, text in (("status", "list leftovers"), ("down", "remove leftovers")):
        cmd = sub.add_parser(name, help=text)
        cmd.add_argument("--uid", help="only this environment's (default: every irx test environment's)")
    args = parser.parse_args(argv)
    try:
        if args.command == "up":
            return _up(args)
        found = leftovers(args.uid) if args.command == "status" else remove_leftovers(args.uid)
    except (TestEnvError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    for item in found:
        print(("removed " if args.command == "down" else "") + str(item))
    return 1 if found and args.command == "status" else 0


if __name__ == "__main__":
    sys.exit(main())

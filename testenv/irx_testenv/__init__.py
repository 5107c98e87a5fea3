"""Real services for irx's integration tests, drills and demo: PostgreSQL, Redis, nginx, SSH hosts, and the
alerting chain (postgres_exporter, Prometheus, Alertmanager).

Each service is a class with ``start()``/``stop()`` (also a context manager) that runs a private
instance under a directory of the caller's choosing, on 127.0.0.1 or on namespace hosts in
10.200.0.0/16, and never anything else. Every wait is bounded; failures raise :class:`TestEnvError`
with the failing command's stderr or the server's log. Everything created carries ``irxt-<uid>``, so
:func:`leftovers` can prove a teardown was complete.

Typical use::

    with PostgresServer(base_dir=tmp) as pg, SshHosts(["web1", "web2"], base_dir=tmp) as hosts:
        psycopg.connect(pg.dsn)
        ansible_runner.run(inventory=str(hosts.inventory_path), ...)

The system packages come from ``scripts/install-system-deps.sh``; ``python -m irx_testenv`` lists or
removes leftovers of crashed runs.
"""

from __future__ import annotations

from irx_testenv._proc import TestEnvError, free_port
from irx_testenv.leftovers import Leftover, leftovers, remove_leftovers
from irx_testenv.monitoring import AlertmanagerServer, PostgresExporter, PrometheusServer
from irx_testenv.nginx import NginxServer
from irx_testenv.postgres import PostgresServer
from irx_testenv.redis import RedisServer
from irx_testenv.ssh import SshHost, SshHosts

__all__ = [
    "AlertmanagerServer",
    "Leftover",
    "NginxServer",
    "PostgresExporter",
    "PostgresServer",
    "PrometheusServer",
    "RedisServer",
    "SshHost",
    "SshHosts",
    "TestEnvError",
    "free_port",
    "leftovers",
    "remove_leftovers",
]

"""``irx run --mitogen`` on three real SSH hosts: the same steps, results and decisions as over Ansible's own
SSH, and the steps really ran under Mitogen (its interpreter is the shell's ancestor on the host)."""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import yaml
from journal_checks import check_journal, host_results, of_type
from jsonschema import Draft202012Validator

if TYPE_CHECKING:
    from conftest import IrxCli

pytestmark = pytest.mark.integration

SSH_HOSTS = ("web1", "web2", "db1")


@pytest.mark.parametrize("mitogen", [False, True], ids=["ansible-ssh", "mitogen"])
def test_the_same_run_over_either_transport(
    irx_cli: IrxCli, timeline_validator: Draft202012Validator, mitogen: bool, tmp_path: Path
) -> None:
    # Mitogen's connect timeout (ansible_ssh_timeout, 5 s in the test inventory) covers its bootstrap too: it
    # sends its own code to each host's Python. Three at once on a loaded 2-core machine take longer.
    inventory = yaml.safe_load(irx_cli.inventory.read_text())
    inventory["all"]["children"]["testhosts"]["vars"]["ansible_ssh_timeout"] = 60
    (tmp_path / "inventory.yml").write_text(yaml.safe_dump(inventory))
    mark = f"irx-mitogen-{secrets.token_hex(4)}"
    transport = ["--mitogen"] if mitogen else []
    ran = irx_cli.run("run-mitogen", "--yes", "-e", f"mark={mark}", "-i", str(tmp_path / "inventory.yml"), *transport)
    try:
        assert ran.rc == 0, ran.output
        journal = irx_cli.journal()
        check_journal(journal, timeline_validator)
        # Strict step order, every host in each step.
        assert [e["step"] for e in of_type(journal, "step_started")] == [
            "ancestry", "count", "fail_one", "mark", "marked"
        ]  # fmt: skip
        for step in ("ancestry", "count", "mark", "marked"):
            assert {h: r["status"] for h, r in host_results(journal, step).items()} == dict.fromkeys(SSH_HOSTS, "ok")
        assert {h: r["data"] for h, r in host_results(journal, "count").items()} == dict.fromkeys(SSH_HOSTS, 7)
        # A failure on one host is that host's result, and the run goes on with the others.
        assert {h: r["status"] for h, r in host_results(journal, "fail_one").items()} == {
            "web1": "ok", "web2": "failed", "db1": "ok"
        }  # fmt: skip
        (decision,) = of_type(journal, "decision", step="mark")
        assert decision["decision"] == "run"
        # Which transport ran the steps: Mitogen's interpreter names itself "(mitogen:...)" on the host.
        for host, result in host_results(journal, "ancestry").items():
            assert ("mitogen:" in result["stdout"]) is mitogen, (host, result["stdout"])
        for host in SSH_HOSTS:  # the hosts share this machine's /tmp
            assert Path(f"/tmp/{mark}-{host}").exists()
    finally:
        for host in SSH_HOSTS:
            Path(f"/tmp/{mark}-{host}").unlink(missing_ok=True)

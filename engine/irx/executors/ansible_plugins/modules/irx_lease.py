#!/usr/bin/python
"""Ansible module ``irx_lease``: the lease a mutating irx run holds on each host it may change.

The control node's host lock (``irx.lock``) only meets runs started on the same machine. The lease lives
on the target host itself, so two operators on two control nodes meet there: a small JSON record (who,
run id, playbook, control node, since, expiry) in one file per host, read and replaced under ``flock`` so
two acquirers on the host never both win.

Times are the host's own clock: ``expires_at`` is the host's ``time.time()`` plus the run's ttl when it
last renewed, so control nodes with skewed clocks still agree on whether a lease is alive. A run that dies
without releasing (``kill -9``, a lost control node) leaves a record that expires by itself.

Actions (``action``):

- ``acquire``: take the lease. Held by another run and not expired: ``held`` (unless ``force``: then
  ``forced``, the displaced record in ``current``). An expired record of another run: ``stale``, taken.
- ``renew``: extend this run's lease (``renewed``). Taken by a live other run meanwhile: ``lost``. Expired
  or released meanwhile and nobody else holds it: taken again (``reacquired``).
- ``release``: clear the record if it is still this run's (``released``); otherwise leave it (``not_ours``).

The answer is in ``outcome`` (the module fails only when the file cannot be used), with the record found
in ``current`` and the one written in ``lease``.
"""

from __future__ import annotations

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.irx_leases import ARGUMENT_SPEC, lease_action


def main() -> None:
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=False)
    failed, result = lease_action(module.params)
    if failed:
        module.fail_json(**result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()

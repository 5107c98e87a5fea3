#!/usr/bin/python
"""Ansible module ``irx_command``: how every irx ``shell`` and ``command`` step runs on a host.

irx owns this module so that values are data by construction, whatever characters they hold:

- nothing is expanded: an argv list is executed as it is (``ansible.builtin.command`` expands ``$VARS``
  in argv unless told not to); a script is written to a private file and run by the shell from there, so
  the rendered script is never on any command line and has no length limit but the file's;
- the step's ``env`` is set in the child's environment by this module, never as a ``VAR=value`` prefix
  on the ``/bin/sh -c`` command line that Ansible's ``environment:`` keyword produces (readable by every
  user of the host in ``ps``); its values are never echoed back in the result;
- stdin is ``/dev/null``; the timeout is enforced here, on the host: the command runs in a session of its
  own and the whole process group gets SIGTERM at the timeout and SIGKILL ``kill_grace`` seconds later;
- scripts run under bash with ``pipefail`` (a failing stage of a pipeline fails the step), or under
  /bin/sh (with pipefail where that shell has it) on a host without bash; the result says which.

Arguments reach the module through Ansible's module transport (stdin with pipelining), never argv. The
code is ``module_utils/irx_step.py`` (standard library only): irx's ``irx_command`` action plugin sends it
to the host's Python without AnsiballZ, after checking ``irx_command_args`` on the control node; this module
file is what runs when that plugin is not used (Mitogen, a playbook of the operator's own). It runs on any
Python that ansible-core supports on targets.
"""

from __future__ import annotations

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.irx_command_args import ARGUMENT_SPEC, MUTUALLY_EXCLUSIVE, REQUIRED_ONE_OF
from ansible.module_utils.irx_step import run_step


def main() -> None:
    module = AnsibleModule(
        argument_spec=ARGUMENT_SPEC,
        mutually_exclusive=MUTUALLY_EXCLUSIVE,
        required_one_of=REQUIRED_ONE_OF,
        supports_check_mode=False,
    )
    result = run_step(module.params)
    if result.get("failed"):
        module.fail_json(**result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()

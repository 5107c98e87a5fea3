"""Ansible strategy plugin ``irx_mitogen``: the ``irx`` strategy over Mitogen's connections (opt-in).

Mitogen (https://mitogen.networkgenomics.com/ansible_detailed.html) replaces Ansible's per-task SSH and
module start-up with one persistent Python interpreter per host; its strategies are a mixin over Ansible's
own (``mitogen_linear`` is the mixin over ``linear``). This is the same mixin over irx's strategy, so steps
keep irx's order and hand-off. Mitogen is not one of irx's dependencies: ``irx run --mitogen`` checks that it
is installed and loads with this ansible-core before it starts Ansible (irx.executors.ansible.strategy_for).
"""

from __future__ import annotations

import ansible_mitogen.loaders  # refuses an ansible-core Mitogen does not support (AnsibleError)
import ansible_mitogen.strategy
from ansible.plugins.loader import strategy_loader

DOCUMENTATION = """
    name: irx_mitogen
    short_description: The irx strategy with Mitogen's connection layer
    description:
        - Used by irx's Ansible session when run with --mitogen.
    author: irx
"""

_Base = strategy_loader.get("irx", class_only=True)


class StrategyModule(ansible_mitogen.strategy.StrategyMixin, _Base):  # type: ignore[misc,valid-type]
    exit_on_done = False  # the mixin shuts Mitogen's connection processes down once the play returns

"""Inventories, loaded by ansible-core's own machinery, and Ansible host patterns.

``--inventory`` takes a NAME (``inventories/NAME`` as a ``.yml``, ``.yaml`` or ``.ini`` file or a directory,
looked up in ``./inventories`` and then in irx's own) or a PATH to any Ansible inventory: INI, YAML,
a directory with ``group_vars/`` and ``host_vars/``, an executable inventory script, an inventory plugin
config, or a ``host1,host2,`` list. Omitted, it is ``local``: this machine in every group the shipped
playbooks target.

ansible is imported inside the functions here, never at module level: ``irx --help`` must not pay for it.

Ansible only *warns* when an inventory source fails to parse and carries on with what it got (or with an
implicit localhost). irx refuses instead: during an incident a silently half-read inventory means steps
run on fewer hosts than the engineer believes. Any source that fails to parse is an :class:`InventoryError`
naming the file and the parser's reason, on one line.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from irx.ansible_display import Captured, ansible_reason, capture_display
from irx.errors import InventoryError
from irx.vault import Vault as Vault
from irx.vault import open_vault, opened
from irx.vault import vaulted_values as vaulted_values

# Vault and vaulted_values live in irx.vault and are re-exported (``as``): cli, plan, run, the executors and
# the tests import them from here.

DEFAULT_INVENTORY = "local"
INVENTORY_SUFFIXES: tuple[str, ...] = (".yml", ".yaml", ".ini")
# Group and host variables Ansible sets itself; ``ansible-inventory --list`` leaves them out too.
MAGIC_VARS: frozenset[str] = frozenset(
    {"inventory_file", "inventory_dir", "inventory_hostname", "inventory_hostname_short", "group_names"}
)
_TEMPLATE_MARK = re.compile(r"{{|{%")


def inventory_dirs() -> list[Path]:
    """Where a NAME is looked up: ``./inventories``, then the inventories shipped with irx."""
    dirs = [Path.cwd() / "inventories", Path(__file__).resolve().parent / "data" / "inventories"]
    return list(dict.fromkeys(dirs))


def resolve_source(spec: str | None) -> str:
    """The inventory source for ``--inventory SPEC`` (None means ``local``), as Ansible takes it.

    A SPEC with a path separator is a PATH; otherwise it is first a NAME under an inventories directory,
    then a path relative to the current directory. ``a,b,`` is an Ansible host list and passes through.
    """
    spec = DEFAULT_INVENTORY if spec is None else spec
    if not spec.strip():
        raise InventoryError("--inventory is empty: give a name under inventories/ or a path")
    if "," in spec and not Path(spec).exists():
        return spec
    is_path = os.sep in spec or "/" in spec or spec.startswith(".")
    if not is_path:
        for base in inventory_dirs():
            for candidate in (base / spec, *(base / f"{spec}{suffix}" for suffix in INVENTORY_SUFFIXES)):
                if candidate.exists():
                    return str(candidate)
    path = Path(spec).expanduser()
    if path.exists():
        return str(path.resolve())
    if is_path:
        raise InventoryError(f"inventory {spec}: no such file or directory")
    where = ", ".join(str(base) for base in inventory_dirs())
    raise InventoryError(
        f"inventory {spec!r} not found: no inventories/{spec}[.yml|.yaml|.ini] in {where}, and no file {spec!r} here"
    )


def display_name(spec: str | None) -> str:
    return DEFAULT_INVENTORY if spec is None else spec


# --- when a source fails to parse ----------------------------------------------------------------------


# Failures that only mean "this plugin does not read this kind of file": never the interesting reason.
_NOT_MY_KIND = ("no root 'plugin' key found", "Plugin configuration YAML file, not YAML inventory")


def _best_failure(source: str, failures: Sequence[tuple[str, BaseException]]) -> str:
    """The one failure worth showing for ``source``: the parser its kind of file is meant for."""
    path = Path(source)
    if path.is_file() and os.access(path, os.X_OK):
        preferred = ["script"]
    elif path.suffix in {".yml", ".yaml", ".json"}:
        preferred = ["auto", "yaml"]
    elif path.suffix == ".ini":
        preferred = ["ini"]
    else:
        preferred = ["ini", "yaml", "auto"]
    relevant = [(plugin, exc) for plugin, exc in failures if not any(s in str(exc) for s in _NOT_MY_KIND)]
    relevant = relevant or list(failures)
    for want in preferred:
        for plugin, exc in relevant:
            if plugin == want or plugin.endswith(f".{want}"):
                return f"{plugin} plugin: {ansible_reason(exc)}"
    plugin, exc = relevant[0]
    return f"{plugin} plugin: {ansible_reason(exc)}" if plugin else ansible_reason(exc)


# --- the inventory --------------------------------------------------------------------------------------


class Inventory:
    """A parsed inventory: its groups, host patterns (with ``--limit``) and per-host variables."""

    def __init__(
        self, source: str, name: str, limit: str | None, manager: Any, loader: Any, vault: Vault | None = None
    ) -> None:
        self.source = source
        self.name = name
        self.limit = limit
        self.vault = vault or Vault()  # handed to the Ansible session, which must open the same values
        self.warnings: list[str] = []
        self._manager = manager
        self._loader = loader
        self._group_vars_cache: dict[tuple[str, ...], dict[str, Any]] = {}
        self._host_vars_cache: dict[str, dict[str, Any]] = {}
        self._templated: dict[tuple[str, str], Any] = {}

    # groups and hosts

    def groups(self) -> list[str]:
        """Every group name, sorted, without Ansible's implicit ``all`` and ``ungrouped``."""
        return sorted(name for name in self._manager.groups if name not in {"all", "ungrouped"})

    def hosts(self, pattern: str, *, limited: bool = True) -> tuple[str, ...]:
        """Host names matching an Ansible pattern, in inventory order; ``--limit`` applies unless told."""
        from ansible.errors import AnsibleError

        with capture_display():  # "Could not match supplied host pattern" is ours to report
            try:
                found = self._manager.get_hosts(pattern, ignore_limits=not limited)
            except AnsibleError as exc:
                raise InventoryError(f"host pattern {pattern!r}: {ansible_reason(exc)}") from None
        return tuple(host.name for host in found)

    def host_groups(self, name: str) -> tuple[str, ...]:
        """The groups of a host, sorted, without ``all`` (Ansible's ``group_names``)."""
        host = self._manager.get_host(name)
        return tuple(sorted(group.name for group in host.get_groups() if group.name != "all"))

    def groups_summary(self, limit: int = 40) -> str:
        groups = self.groups()
        shown = ", ".join(groups[:limit])
        more = f", ... ({len(groups) - limit} more)" if len(groups) > limit else ""
        return (shown + more) if groups else "(none: only ungrouped hosts)"

    # variables

    def host_vars(self, name: str) -> Mapping[str, Any]:
        """A host's variables, as ``ansible-inventory --list`` shows them (plus Ansible's magic names).

        Ansible's VariableManager would recompute every group's variables for every host and pay for an
        empty facts cache each time; hosts share groups, so the group part is computed once per distinct
        set of groups with the same functions and precedence (``C.VARIABLE_PRECEDENCE``) VariableManager
        uses. A test compares the result with ``ansible-inventory --list`` for every test inventory.
        """
        cached = self._host_vars_cache.get(name)
        if cached is not None:
            return cached
        from ansible.errors import AnsibleError
        from ansible.utils.vars import combine_vars
        from ansible.vars.plugins import get_vars_from_inventory_sources

        host = self._manager.get_host(name)
        if host is None:
            raise InventoryError(f"host {name!r} is not in inventory {self.name}")
        try:
            with capture_display() as captured:
                base = self._group_vars(host)
                merged = combine_vars(base, host.get_vars())
                merged = combine_vars(
                    merged, get_vars_from_inventory_sources(self._loader, self._manager._sources, [host], "all")
                )
        except AnsibleError as exc:
            raise InventoryError(f"inventory {self.name}: host {name}: {ansible_reason(exc)}") from None
        self._note(captured.warnings)
        self._host_vars_cache[name] = merged
        return merged  # type: ignore[no-any-return]  # ansible is untyped

    def _group_vars(self, host: Any) -> dict[str, Any]:
        from ansible import constants as C
        from ansible.inventory.helpers import get_group_vars, sort_groups
        from ansible.utils.vars import combine_vars
        from ansible.vars.plugins import get_vars_from_inventory_sources

        groups = sort_groups([group for group in host.get_groups() if group.name != "all"])
        key = tuple(group.name for group in groups)
        cached = self._group_vars_cache.get(key)
        if cached is not None:
            return cached
        all_group = self._manager.groups["all"]
        sources = self._manager._sources
        loaders = {
            "all_inventory": lambda: all_group.get_vars(),
            "all_plugins_inventory": lambda: get_vars_from_inventory_sources(self._loader, sources, [all_group], "all"),
            "groups_inventory": lambda: get_group_vars(groups),
            "groups_plugins_inventory": lambda: get_vars_from_inventory_sources(self._loader, sources, groups, "all"),
        }
        data: dict[str, Any] = {}
        # The *_plugins_play entries read vars next to a playbook; an irx playbook is not an Ansible
        # playbook and ansible-inventory (no --playbook-dir) skips them as well.
        for entry in C.VARIABLE_PRECEDENCE:
            if entry in loaders:
                data = combine_vars(data, loaders[entry]())
        self._group_vars_cache[key] = data
        return data

    def value(self, host: str, var: str) -> Any:
        """A host variable's value with Ansible templating applied (``"{{ ansible_host }}:5432"``).

        Raises KeyError when the host has no such variable.
        """
        key = (host, var)
        if key in self._templated:
            return self._templated[key]
        hostvars = self.host_vars(host)
        raw = hostvars[var]
        value = self._template(host, var, raw, hostvars) if _needs_templating(raw) else raw
        value = opened(host, var, value)
        self._templated[key] = value
        return value

    def _template(self, host: str, var: str, raw: Any, hostvars: Mapping[str, Any]) -> Any:
        from ansible.errors import AnsibleError
        from ansible.template import Templar

        variables = dict(hostvars)
        variables.setdefault("ansible_playbook_python", sys.executable)
        variables.setdefault("groups", self._manager.get_groups_dict())
        variables.setdefault("inventory_hostname", host)
        try:
            with capture_display():
                return Templar(loader=self._loader, variables=variables).template(raw)
        except AnsibleError as exc:
            raise InventoryError(f"inventory {self.name}: host {host}: variable {var}: {ansible_reason(exc)}") from None

    def _note(self, warnings: Iterable[str]) -> None:
        for text in warnings:
            if text not in self.warnings:
                self.warnings.append(text)


def _needs_templating(value: Any) -> bool:
    if isinstance(value, str):
        return _TEMPLATE_MARK.search(value) is not None
    if isinstance(value, Mapping):
        return any(_needs_templating(item) for item in value.values())
    if isinstance(value, list | tuple):
        return any(_needs_templating(item) for item in value)
    return False


def load_inventory(spec: str | None, limit: str | None = None, vault: Vault | None = None) -> Inventory:
    """Parse the inventory ``--inventory SPEC`` names and apply ``--limit``; refuse anything unparsed."""
    source = resolve_source(spec)
    name = display_name(spec)
    from ansible.errors import AnsibleError
    from ansible.inventory.manager import InventoryManager
    from ansible.parsing.dataloader import DataLoader

    if _names_a_plugin(source):
        _init_plugin_loader()
    loader = DataLoader()
    vault = vault or Vault()
    with capture_display() as captured:
        try:
            open_vault(loader, vault)
            # Parse each file of a directory ourselves, as Ansible would, to know which one failed.
            manager = InventoryManager(loader=loader, sources=[source], parse=False)
            parsed = _parse(manager, source, captured)
            if parsed:
                manager._inventory.reconcile_inventory()
            _apply_inventory_stage_vars(manager, loader)
        except AnsibleError as exc:
            raise InventoryError(f"inventory {name}: {ansible_reason(exc)}") from None
        if not parsed:
            raise InventoryError(f"inventory {name}: {source}: no inventory source found in it")
    inventory = Inventory(source, name, limit, manager, loader, vault)
    inventory._note(w for w in captured.warnings if not _is_noise(w))
    if not manager.hosts:
        raise InventoryError(f"inventory {name} ({source}) has no hosts")
    if limit:
        _apply_limit(inventory, manager, limit)
    return inventory


_PLUGIN_LINE = re.compile(rb"^plugin\s*:", re.MULTILINE)


def _names_a_plugin(source: str) -> bool:
    """Whether the source is (or a directory holds) an inventory plugin config (``plugin: ...``)."""
    if "," in source and not os.path.exists(source):
        return False
    paths = [os.path.join(source, entry) for entry in os.listdir(source)] if os.path.isdir(source) else [source]
    for path in paths:
        if path.endswith((".yml", ".yaml", ".json")) and os.path.isfile(path):
            with contextlib.suppress(OSError), open(path, "rb") as config:
                if _PLUGIN_LINE.search(config.read(64 * 1024)):
                    return True
    return False


def _init_plugin_loader() -> None:
    """What every ansible command does at start: install the collection loader, without which a plugin named
    in full (``plugin: ansible.builtin.generator``, ``ansible.builtin.constructed``) is "unknown". Paid only
    for inventories that name a plugin (about 0.3 s)."""
    from ansible.plugins.loader import init_plugin_loader
    from ansible.utils.collection_loader import AnsibleCollectionConfig

    if AnsibleCollectionConfig.collection_finder is None:  # once per process
        init_plugin_loader()


def _parse(manager: Any, source: str, captured: Captured) -> bool:
    """Parse ``source`` into ``manager``, file by file for a directory; a file that fails is an error."""
    if "," in source and not os.path.exists(source):
        return bool(manager.parse_source(source))
    if os.path.isdir(source):
        from ansible.inventory.manager import IGNORED

        parsed = False
        for entry in sorted(os.listdir(source)):
            if IGNORED.search(os.fsencode(entry)):
                continue
            parsed = _parse(manager, os.path.join(source, entry), captured) or parsed
        return parsed
    before = len(captured.failures)
    if manager.parse_source(source):
        return True
    failures = captured.failures[before:]
    if not failures:
        raise InventoryError(f"inventory {source}: no inventory plugin accepts this file")
    raise InventoryError(f"inventory {source}: {_best_failure(source, failures)}")


def _apply_inventory_stage_vars(manager: Any, loader: Any) -> None:
    """What ``InventoryManager.parse_sources`` does after parsing: vars plugins of the inventory stage."""
    from ansible.utils.vars import combine_vars
    from ansible.vars.plugins import get_vars_from_inventory_sources

    for group in manager.groups.values():
        group.vars = combine_vars(
            group.vars, get_vars_from_inventory_sources(loader, manager._sources, [group], "inventory")
        )
    for host in manager.hosts.values():
        host.vars = combine_vars(
            host.vars, get_vars_from_inventory_sources(loader, manager._sources, [host], "inventory")
        )


def _is_noise(warning: str) -> bool:
    return warning.startswith(("Unable to parse", "No inventory was parsed", "Could not match supplied host"))


def _apply_limit(inventory: Inventory, manager: Any, limit: str) -> None:
    from ansible.errors import AnsibleError

    with capture_display():
        try:
            manager.subset(limit)
            matched = manager.get_hosts("all")
        except AnsibleError as exc:
            raise InventoryError(f"--limit {limit!r}: {ansible_reason(exc)}") from None
    if not matched:
        raise InventoryError(
            f"--limit {limit!r} matches no host in inventory {inventory.name}; its groups: {inventory.groups_summary()}"
        )

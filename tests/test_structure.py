"""The shape of the house, checked: no import circle, imports only go down, small modules and functions.

These are the promises docs/design.md ("How the code is laid out") makes to a newcomer; the test reads the
source with ``ast`` (every import counts, including the ones inside functions, which is how irx keeps
``irx --help`` fast) so a change that breaks one fails here with the module and line.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest

ENGINE = Path(__file__).resolve().parents[1] / "engine"
PACKAGE = ENGINE / "irx"
# Shipped to the hosts by Ansible and run there: not part of irx's own import graph.
PLUGINS = PACKAGE / "executors" / "ansible_plugins"
MAX_MODULE_LINES = 500
MAX_FUNCTION_LINES = 80

# Layers, top to bottom: a module may import its own layer's modules or any layer below, never above.
# A name stands for the module and, when it is a package, everything in it.
LAYERS: list[tuple[str, ...]] = [
    ("irx.cli", "irx.cli_journal", "irx.cli_library", "irx.cli_options", "irx.cli_completion", "irx.__main__"),
    # argument parsing (and completing)
    ("irx.commands",),  # one module per command: printing and exit codes
    ("irx.serve", "irx.run"),  # the long-running side: the server, a run
    ("irx.orchestrator", "irx.plan", "irx.report", "irx.validate", "irx.library", "irx.history", "irx.lease",
     "irx.notify", "irx.scaffold", "irx.knock_ons"),  # the concepts a command uses
    ("irx.loader", "irx.rules", "irx.rules_templates", "irx.rule_context", "irx.lock", "irx.batches",
     "irx.executors", "irx.incidents", "irx.routes", "irx.timeline", "irx.journal_read", "irx.outcome", "irx.ports",
     "irx.params", "irx.param_types", "irx.inventory", "irx.vault", "irx.templating", "irx.schema_messages",
     "irx.results", "irx.document", "irx.inbox", "irx.resume", "irx.approvers",
     "irx.rule_docs"),  # what they are built from
    ("irx.model", "irx.actions", "irx.alerts", "irx.ansible_display", "irx.document_fast", "irx.schema_fast"),
    ("irx", "irx.errors", "irx.events", "irx.problems", "irx.redact", "irx.humanize", "irx.verdict",
     "irx.approval", "irx.commandline", "irx.data"),  # leaves
]  # fmt: skip


@dataclass(frozen=True)
class Import:
    module: str
    target: str
    line: int


def _modules() -> dict[str, Path]:
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        if PLUGINS in path.parents:
            continue
        parts = path.relative_to(ENGINE).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


MODULES = _modules()


def _imports(name: str, path: Path) -> list[Import]:
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parent, *([node.module] if node.module else [])])
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base for a in node.names]
        else:
            continue
        out += [Import(name, t, node.lineno) for t in targets if t in MODULES and t != name]
    return out


GRAPH = {name: _imports(name, path) for name, path in MODULES.items()}


def _layer(module: str) -> int:
    for index, members in enumerate(LAYERS):
        for member in members:
            if module == member or (member != "irx" and module.startswith(member + ".")):
                return index
    raise AssertionError(f"{module} is in no layer of tests/test_structure.py: place it (and in docs/design.md)")


def test_every_module_has_a_layer() -> None:
    layers = {module: _layer(module) for module in MODULES}  # _layer fails naming a module in no layer
    assert len(layers) == len(MODULES) > 50
    assert layers["irx.cli"] == 0
    assert layers["irx.errors"] == len(LAYERS) - 1


def test_imports_only_go_down() -> None:
    upward = [
        f"{MODULES[i.module].relative_to(ENGINE)}:{i.line}: {i.module} imports {i.target}, a layer above it"
        for imports in GRAPH.values()
        for i in imports
        if _layer(i.target) < _layer(i.module)
    ]
    assert upward == []


def test_no_import_circle() -> None:
    # Tarjan's strongly connected components over every import, lazy ones included.
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    circles: list[list[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        for i in GRAPH[module]:
            if i.target not in index:
                visit(i.target)
                low[module] = min(low[module], low[i.target])
            elif i.target in stack:
                low[module] = min(low[module], index[i.target])
        if low[module] == index[module]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == module:
                    break
            if len(component) > 1:
                circles.append(sorted(component))

    for module in GRAPH:
        if module not in index:
            visit(module)
    assert circles == []


@pytest.mark.parametrize("module", sorted(MODULES))
def test_module_and_functions_are_small(module: str) -> None:
    path = MODULES[module]
    source = path.read_text()
    assert len(source.splitlines()) <= MAX_MODULE_LINES, f"{path.relative_to(ENGINE)} is over {MAX_MODULE_LINES} lines"
    long = [
        f"{path.relative_to(ENGINE)}:{node.lineno}: {node.name} is {node.end_lineno - node.lineno + 1} lines"
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and node.end_lineno is not None
        and node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES
    ]
    assert long == []


def _prints(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        where = f"{path.relative_to(ENGINE)}:{getattr(node, 'lineno', 0)}"
        if isinstance(node, ast.Import | ast.ImportFrom):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
            found += [f"{where}: imports click" for n in names if n.split(".")[0] == "click"]
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "print":
            found.append(f"{where}: print()")
        elif (
            isinstance(node, ast.Attribute)
            and node.attr in {"stdout", "stderr"}
            and isinstance(node.value, ast.Name)
            and node.value.id == "sys"
        ):
            found.append(f"{where}: sys.{node.attr}")
    return found


# The one write to stdout below the commands: the `stdout` notification channel, a sink a user configures.
ALLOWED_WRITES = {"irx/notify.py": "sys.stdout"}


def test_concept_modules_print_nothing_and_never_import_a_command() -> None:
    top = {"irx.cli", "irx.cli_journal", "irx.cli_library", "irx.cli_options", "irx.cli_completion", "irx.__main__"}
    concept = {m: p for m, p in MODULES.items() if m not in top and not m.startswith("irx.commands")}
    problems = [
        line
        for path in concept.values()
        for line in _prints(path)
        if not line.endswith(ALLOWED_WRITES.get(str(path.relative_to(ENGINE)), "\0"))
    ]
    problems += [
        f"{MODULES[i.module].relative_to(ENGINE)}:{i.line}: {i.module} imports {i.target}"
        for m in concept
        for i in GRAPH[m]
        if i.target == "irx.cli" or i.target.startswith("irx.commands")
    ]
    assert problems == []


def test_every_cli_command_calls_its_command_module() -> None:
    """cli.py (and the commands it registers from cli_*.py) parses arguments only: each command's body hands
    over to irx.commands.<module>.main."""
    tree = ast.Module(
        body=[n for p in sorted(PACKAGE.glob("cli*.py")) for n in ast.parse(p.read_text()).body], type_ignores=[]
    )
    functions = {node.name: node for node in tree.body if isinstance(node, ast.FunctionDef)}
    decorated = [f for f in functions.values() if any("command" in ast.unparse(d) for d in f.decorator_list)]
    assert len(decorated) >= 13
    for function in decorated:
        imports = [n for n in ast.walk(function) if isinstance(n, ast.ImportFrom)]
        assert [n.module for n in imports if (n.module or "").startswith("irx.commands.")], (
            f"engine/irx/cli*.py:{function.lineno}: {function.name} does not call a module of irx.commands"
        )

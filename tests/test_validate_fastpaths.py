"""irx validate's fast paths change nothing but time: each is compared here with the path it shortcuts.

* irx.document_fast (libyaml events straight to data and positions) against the full reader (the Python
  composer and builder) on every YAML file in the repository's cases and library and on files written to
  exercise what the fast path must hand over (anchors, tags, merge and duplicate keys, depth, several
  documents, syntax errors): same data, value and key positions, block scalars and problems.
* irx.schema_fast (the schema compiled to a yes/no check) against jsonschema's ``iter_errors`` on every
  shipped and case playbook and on thousands of seeded mutations of them (values replaced by other
  types, keys removed or added, lists emptied): the compiled check says valid exactly when jsonschema
  finds no error. A "valid" that jsonschema disputes would hide schema problems.
"""

from __future__ import annotations

import copy
import random
from pathlib import Path
from typing import Any

import pytest

from irx import document, document_fast, loader
from irx.document import Document, read_document

REPO = Path(__file__).resolve().parents[1]
YAML_FILES = sorted(
    p
    for folder in ("tests/cases", "playbooks", "molecule", "inventories")
    for p in (REPO / folder).rglob("*")
    if p.suffix in (".yaml", ".yml") and p.is_file()
)

HANDED_OVER = {
    "anchor": "a: &x {b: 1}\nc: *x\n",
    "merge": "base: &b {x: 1}\nchild:\n  <<: *b\n  y: 2\n",
    "tag": "a: !!str 1\nb: !custom x\n",
    "duplicate": "a: 1\nb: 2\na: 3\n",
    "nested-duplicate": "a:\n  b: 1\n  b: 2\n",
    "complex-key": "? [a, b]\n: 1\n",
    "deep": "a: " + "[" * 70 + "]" * 70 + "\n",
    "at-limit": "a: " + "[" * 63 + "]" * 63 + "\n",
    "two-documents": "a: 1\n---\nb: 2\n",
    "list": "- a\n- b\n",
    "scalar": "just text\n",
    "comments-only": "# nothing\n",
    "syntax": "a: [1, 2\nb: 3\n",
    "tab": "a:\n\tb: 1\n",
    "value-tag": "a: =\n",
}
PLAIN = {
    "scalars": "i: 12\nf: 1.5\nb: true\nB: False\ny: yes\nn: no\non: on\nnull1: ~\nnull2:\nq: '<<'\ns: \"1\"\n",
    "block": "a: |\n  one\n  two\nb: >\n  folded\n  text\nc: [x, {d: e}]\n",
    "explicit-start": "%YAML 1.1\n---\na: 1\n...\n",
    "unicode": "title: Ünïcødé — ✓\nlist:\n- 1\n- - 2\n  - 3\n",
    "near-limit": "a: " + "[" * 60 + "]" * 60 + "\n",
    "timestamps": "a: 2026-11-22\nb: 2026-11-22T10:00:00Z\n",
    "keys": "1: one\ntrue: t\nnull: n\n'<<': quoted\n",
}


def _full(path: Path, monkeypatch: pytest.MonkeyPatch) -> Document:
    with monkeypatch.context() as patch:
        patch.setattr(document_fast, "build", lambda *args: None)
        return read_document(path)


def _same(fast: Document, full: Document) -> None:
    assert fast.data == full.data
    assert repr(fast.data) == repr(full.data)  # same types too: 1 vs 1.0 vs True
    assert fast.values == full.values
    assert fast.keys == full.keys
    assert fast.block_scalars == full.block_scalars
    assert fast.problems == full.problems


@pytest.mark.parametrize("path", YAML_FILES, ids=lambda p: str(p.relative_to(REPO)))
def test_fast_reader_matches_the_full_reader_on_the_repository(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _same(read_document(path), _full(path, monkeypatch))


def _built(text: str) -> Any:
    return document.read_plain(text)


@pytest.mark.parametrize("name", sorted(HANDED_OVER))
def test_fast_reader_hands_unusual_files_to_the_full_reader(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert _built(HANDED_OVER[name]) is None
    path = tmp_path / f"{name}.yaml"
    path.write_text(HANDED_OVER[name])
    _same(read_document(path), _full(path, monkeypatch))


@pytest.mark.parametrize("name", sorted(PLAIN))
def test_fast_reader_reads_plain_files_like_the_full_reader(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert _built(PLAIN[name]) is not None
    path = tmp_path / f"{name}.yaml"
    path.write_text(PLAIN[name])
    _same(read_document(path), _full(path, monkeypatch))


PLAYBOOKS = [
    p
    for p in sorted((REPO / "playbooks").glob("*.yaml")) + sorted((REPO / "tests" / "cases").rglob("*.yaml"))
    if isinstance(read_document(p).data, dict)
]
REPLACEMENTS: list[Any] = [None, True, 0, -1, 1.5, "", "x", "SEV1", "30s", [], [{}], {}, {"id": "x"}]


def _paths(data: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [path]
    if isinstance(data, dict):
        for key, value in data.items():
            found += _paths(value, (*path, key))
    elif isinstance(data, list):
        for index, value in enumerate(data):
            found += _paths(value, (*path, index))
    return found


def _mutated(data: Any, rng: random.Random) -> Any:
    out = copy.deepcopy(data)
    for _ in range(rng.choice((1, 1, 2))):
        path = rng.choice(_paths(out)[1:])
        parent = out
        for part in path[:-1]:
            parent = parent[part]
        action = rng.random()
        if action < 0.2 and isinstance(parent, dict):
            del parent[path[-1]]
        elif action < 0.3 and isinstance(parent, dict):
            parent[rng.choice(("extra", "on", "when", "timeout", "rollback"))] = rng.choice(REPLACEMENTS)
        else:
            parent[path[-1]] = rng.choice(REPLACEMENTS)
    return out


def _jsonschema_valid(data: Any) -> bool:
    return next(iter(loader._validator().iter_errors(data)), None) is None


def test_the_compiled_schema_is_compiled() -> None:
    assert loader._valid() is not None  # else every file silently takes the slow path


@pytest.mark.parametrize("path", PLAYBOOKS, ids=lambda p: str(p.relative_to(REPO)))
def test_compiled_schema_agrees_with_jsonschema(path: Path) -> None:
    data = read_document(path).data
    rng = random.Random(path.name)
    check = loader._valid()
    verdicts = {True: 0, False: 0}
    for candidate in [data] + [_mutated(data, rng) for _ in range(150)]:
        expected = _jsonschema_valid(candidate)
        assert check(candidate) is expected, candidate
        verdicts[expected] += 1
    assert verdicts[False] > 50  # the mutations do break the schema, so the comparison means something

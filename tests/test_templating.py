"""The sandbox: shell quoting proven against a real /bin/sh, refs, partial rendering, clear errors."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from irx.errors import TemplateError
from irx.templating import (
    Namespace,
    evaluate,
    expression_refs,
    render,
    render_partial,
    template_refs,
    truthy,
)

CANARY = "irx-canary"

# Each of these would run `: > irx-canary` (a shell builtin creating the file) if it ever became shell
# syntax. "; rm -rf /" is there as written in the issue; the shell runs with an empty PATH, so even a
# broken quoting could not find rm.
HOSTILE = [
    "; rm -rf /",
    f"; : > {CANARY}",
    f"$(: > {CANARY})",
    f"`: > {CANARY}`",
    f"'; : > {CANARY}; '",
    f'"; : > {CANARY}; "',
    f"a\n: > {CANARY}",
    f"a\r\n: > {CANARY}\n",
    f"| : > {CANARY}",
    f"&& : > {CANARY}",
    f"> {CANARY}",
    f"${{IFS}}: > {CANARY}",
    "$HOME ~ * ? [a] {a,b} \\ \\\\ \\n",
    "--help",
    "-n",
    "",
    " ",
    'it\'s "quoted"',
]


def context(**params: Any) -> dict[str, Any]:
    return {"params": Namespace("params", params), "run": Namespace("run", {"severity": "SEV2"})}


def run_sh(command: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """``command`` run by /bin/sh with an empty PATH; output as the exact text (no newline translation)."""
    done = subprocess.run(
        ["/bin/sh", "-c", command],
        cwd=cwd,
        env={"PATH": str(cwd / "empty-path"), "HOME": str(cwd)},
        capture_output=True,
        check=False,
        timeout=10,
    )
    return subprocess.CompletedProcess(
        done.args, done.returncode, done.stdout.decode("utf-8", "surrogateescape"), done.stderr.decode(errors="replace")
    )


@pytest.mark.parametrize("value", HOSTILE)
@pytest.mark.parametrize(
    "template",
    [
        "printf '%s|' {{ params.v }}",
        "printf '%s|' {{ params.v | quote }}",
        "printf '%s|' {{ params.v | quote | quote }}",
        "printf '%s|' {{ 'x' ~ params.v }}",
        "printf '%s|' {{ params.v | upper | lower }}",
    ],
)
def test_hostile_values_are_printed_never_executed(value: str, template: str, tmp_path: Path) -> None:
    command = render(template, context(v=value), shell=True)
    done = run_sh(command, tmp_path)
    assert done.returncode == 0, (command, done.stderr)
    expected = {"'x'": "x" + value, "upper": value.upper().lower()}.get(
        next((k for k in ("'x'", "upper") if k in template), ""), value
    )
    assert done.stdout == expected + "|"
    assert not (tmp_path / CANARY).exists()


def test_a_list_param_becomes_one_word_per_item(tmp_path: Path) -> None:
    items = [f"$(: > {CANARY})", "a b", "'", ""]
    for template in ("printf '%s|' {{ params.v }}", "printf '%s|' {{ params.v | quote }}"):
        done = run_sh(render(template, context(v=items), shell=True), tmp_path)
        assert done.stdout == "|".join(items) + "|"
    assert not (tmp_path / CANARY).exists()


def test_numbers_and_booleans_are_written_bare() -> None:
    assert render("x {{ params.n }} {{ params.b }} {{ params.f }}", context(n=5, b=True, f=0.5), shell=True) == (
        "x 5 true 0.5"
    )


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=st.text(alphabet=st.characters(exclude_characters="\x00", exclude_categories=["Cs"])))
def test_any_text_survives_the_shell_unchanged(value: str, tmp_path: Path) -> None:
    done = run_sh(render("printf '%s' {{ params.v }}", context(v=value), shell=True), tmp_path)
    assert done.stdout == value
    assert not (tmp_path / CANARY).exists()


def test_plain_templates_are_not_quoted() -> None:
    assert render("http://{{ params.h }}/x", context(h="a b")) == "http://a b/x"


# --- errors -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("{{ params.nope }}", "params.nope is undefined"),
        ("{{ params['nope'] }}", "params.nope is undefined"),
        ("{{ nothing }}", "'nothing' is undefined"),
        ("{{ params.h.missing }}", "'missing' is undefined (no such key or attribute)"),
        ("{{ ''.__class__ }}", "refused by the sandbox: access to attribute '__class__' of 'str' object is unsafe."),
        (
            "{{ params.__class__.__mro__ }}",
            "refused by the sandbox: access to attribute '__class__' of 'Namespace' object is unsafe.",
        ),
        ("{{ 1 / 0 }}", "ZeroDivisionError: division by zero"),
        ("{{ params.h | nosuchfilter }}", "syntax error on line 1: No filter named 'nosuchfilter'."),
        ("{{ params.h ", "syntax error on line 1: unexpected end of template, expected 'end of print statement'."),
    ],
)
def test_render_errors_are_one_line_template_errors(source: str, message: str) -> None:
    with pytest.raises(TemplateError) as caught:
        render(source, context(h="x"))
    assert str(caught.value) == message


def test_hints_explain_a_missing_name() -> None:
    ctx = {"params": Namespace("params", {}, {"x": "params.x has no value (set it with -e x=...)"})}
    with pytest.raises(TemplateError, match=r"^params\.x has no value \(set it with -e x=\.\.\.\)$"):
        render("{{ params.x }}", ctx)


def test_a_param_named_like_a_dict_method_is_the_param() -> None:
    assert render("{{ params.items }} {{ params.keys }}", context(items="i", keys="k")) == "i k"


# --- refs and partial rendering -------------------------------------------------------------------------


def test_template_refs_find_context_paths() -> None:
    refs = template_refs("{{ params.a }} {{ vars['b'] }} {% if steps.c.ok %}{{ host.name }}{% endif %}{{ run.id }}")
    assert refs.paths == {("params", "a"), ("vars", "b"), ("steps", "c"), ("host", "name"), ("run", "id")}
    assert refs.runtime
    assert not template_refs("{{ params.a }} {{ run.severity }}").runtime
    assert template_refs("{{ vars[params.k] }}").paths == {("vars",), ("params", "k")}
    assert expression_refs("result.rc == 0").runtime
    assert not expression_refs("{{ params.x > 1 }}").runtime


def test_partial_rendering_keeps_run_time_parts_as_source() -> None:
    part = render_partial(
        "kill {{ steps.find.data | join(' ') }} on {{ params.h }} in {{ run.id }}", context(h="a b"), shell=True
    )
    assert part.text == "kill {{ steps.find.data | join(' ') }} on 'a b' in {{ run.id }}"
    assert part.runtime == ("steps.find.data | join(' ')", "run.id")


def test_partial_rendering_honours_whitespace_control() -> None:
    part = render_partial("a {{- params.h -}} b {{ steps.x }}", context(h="X"))
    assert part.text == "aXb {{ steps.x }}"


def test_a_block_reading_run_time_data_is_kept_whole() -> None:
    source = "{% if steps.x.ok %}restart {{ params.h }}{% endif %}"
    part = render_partial(source, context(h="X"))
    assert part.text == source
    assert part.runtime == (source,)


def test_regions_are_split_from_the_known_parts() -> None:
    source = (
        "{{ params.h }}: {% if params.n > 1 %}n={{ params.n }}{% endif %} "
        "{% for r in steps.x.rows %}{{ r }}{% endfor %}"
    )
    part = render_partial(source, context(h="X", n=2))
    assert part.text == "X: n=2 {% for r in steps.x.rows %}{{ r }}{% endfor %}"
    assert part.runtime == ("{% for r in steps.x.rows %}{{ r }}{% endfor %}",)


@pytest.mark.parametrize(
    "source",
    ["{% set y = 1 %}{{ steps.x }} {{ params.h }}", "{% raw %}{{ a }}{% endraw %}{{ steps.x }}"],
)
def test_statements_that_cannot_be_split_keep_the_whole_template(source: str) -> None:
    assert render_partial(source, context(h="X")).text == source


def test_expressions_evaluate_bare_or_wrapped() -> None:
    ctx = context(n=3, flag="no")
    assert evaluate("params.n > 2", ctx) is True
    assert evaluate("{{ params.n > 5 }}", ctx) is False
    assert evaluate(True, ctx) is True
    assert not truthy(evaluate("params.flag", ctx))
    with pytest.raises(TemplateError, match=r"params\.missing is undefined"):
        evaluate("params.missing", ctx)
    with pytest.raises(TemplateError, match=r"params\.missing is undefined"):
        evaluate("params.missing > 1", ctx)

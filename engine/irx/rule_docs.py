"""What each rule id of ``irx validate`` means, for reports that describe their rules (SARIF's
``tool.driver.rules``): a one-line short description, a full description saying what is wrong and what to
do, and the page that documents it. The semantic rules' one-liners are ``irx.rules.RULES``; the file, YAML
and schema ids are the reader's and the schema's (irx.document, irx.schema_messages)."""

from __future__ import annotations

from dataclasses import dataclass

DOCS = "https://github.com/irx-dev/irx/blob/main/docs/playbook-format.md"
HELP_URI = f"{DOCS}#validation-rules"


@dataclass(frozen=True)
class RuleDoc:
    short: str
    full: str
    help_uri: str = HELP_URI


_SCHEMA_FIX = (
    "The playbook schema (irx schema) says what is allowed; editors with yaml-language-server show it as you type."
)

# File, YAML and schema problems: "rule-id: short description", then the full one, indented; "+schema" at the
# end of a full description appends _SCHEMA_FIX.
_READER_TEXT = """
file-unreadable: the file cannot be read
    irx could not open or read the file (permissions, a dangling symlink).
file-too-large: the file is larger than 1 MiB
    A playbook is a few KB; irx refuses files over 1 MiB unread.
file-binary: the file contains NUL bytes
    The file is not text; a playbook is a UTF-8 YAML file.
file-encoding: the file is not valid UTF-8
    Save the file as UTF-8; the position is the first invalid byte.
yaml-syntax: the file is not valid YAML
    The YAML parser stopped here. irx still reports the YAML and schema problems of the other top-level sections it
    could read; the semantic rules run once the file parses.
yaml-tab: a tab in indentation
    YAML indents with spaces only; replace the tab at this position.
yaml-empty: the file is empty
    A playbook is a mapping starting with apiVersion: irx/v1 (irx new NAME writes one).
yaml-multiple-documents: several YAML documents in one file
    Put one playbook per file; remove the '---' and what follows, or move it to its own file.
yaml-not-mapping: the document is not a mapping
    A playbook is a mapping (apiVersion, kind, metadata, phases), not a list or a scalar.
yaml-duplicate-key: a key defined twice
    YAML would silently keep the last value; irx reports the second definition and the line of the first.
yaml-complex-key: a mapping key that is not a string
    Keys are plain strings; a list or mapping used as a key is refused.
yaml-unknown-tag: a custom YAML tag
    Playbooks are plain data: only the YAML core tags are accepted (no !!python or application tags).
yaml-too-deep: nesting deeper than 64 levels
    Real playbooks nest fewer than 10 levels; irx stops reading beyond 64.
yaml-too-large: aliases expand beyond 50,000 nodes
    Anchors and aliases are allowed, but not a document that expands into a huge one.
yaml-recursive-alias: an alias refers to its own ancestor
    A recursive alias cannot be plain data; remove the cycle.
schema-unknown-key: a key the format does not define
    Unknown keys are errors everywhere (a typo would otherwise be ignored); the message suggests the nearest allowed
    key. +schema
schema-required: a required key is missing
    The mapping marked lacks a key the format requires; the message names it. +schema
schema-action: a step has no action or more than one
    Each step has exactly one of shell, command, module, http, wait, assert, approve, notify.
schema-name: a name that is not an identifier
    Step ids, params and targets are identifiers (letters, digits, _); playbook names are lower-case words with
    dashes.
schema-value: a value of the wrong kind
    The value does not fit any of the forms this key accepts; the message lists them. +schema
schema-no-steps: the playbook has no step
    At least one of diagnose, mitigate, verify or rollback needs a step.
schema-type: a value of the wrong type
    The message says the type expected and the one found (e.g. an integer, got a string). +schema
schema-enum: a value outside its allowed set
    The message lists the allowed values. +schema
schema-const: a value that must be exactly one thing
    This key has a single allowed value (e.g. apiVersion: irx/v1).
schema-pattern: a value that does not match its pattern
    The message says the form expected (e.g. a duration such as 30s). +schema
schema-format: a value that is not a valid URI, date or similar
    The value must have the format named in the message. +schema
schema-minimum: a number below its minimum
    The message gives the smallest allowed value.
schema-maximum: a number above its maximum
    The message gives the largest allowed value.
schema-min-items: an empty or too short list
    This list needs at least the number of items the message says.
schema-min-length: an empty or too short string
    This text needs at least the number of characters the message says.
schema-max-length: a string that is too long
    This text allows at most the number of characters the message says.
schema-unique-items: a list with duplicate items
    Each item of this list may appear once.
"""

# The semantic rules (their short descriptions are irx.rules.RULES): what breaks if ignored, what to do.
_SEMANTIC_TEXT = """
duplicate-step-id
    Step ids name results (steps.ID) and approvals (--approve ID): each id is used once in a playbook.
unknown-target
    A host step's on: must name a target declared under targets:, which maps it to inventory hosts.
unknown-param
    A template reads params.NAME that the playbook does not declare under params:; declare it or fix the name. Every
    place that reads it is listed.
unknown-step
    A template reads steps.ID of a step the playbook does not have; fix the id.
forward-reference
    A step reads the result of a step that has not run yet at that point (a later step or phase); move one of them.
template-syntax
    The Jinja2 template does not parse; the message shows where.
unknown-filter
    A filter or test used in a template does not exist in irx's sandboxed environment.
unknown-name
    Templates see only params, steps, run, host, vars (and result in until); any other name is undefined at run
    time.
unsafe-attribute
    Attributes and keys starting with _ are refused by the template sandbox; the step would fail at run time.
mutating-in-diagnose
    Diagnose steps must not change systems: move the step to mitigate, or mark it mutating: false if it only reads.
approval-missing
    In SEV1/SEV2 playbooks every mutating step says whether it needs an approval (approval: required, or required:
    false with a reason).
approval-timing
    A gate's escalate_after must come before its timeout; escalate_to needs escalate_after; only approval gates
    escalate.
no-rollback-steps
    on_failure: rollback goes to the rollback phase, which this playbook does not have.
param-default
    A param's default must itself be valid: its type, choices, bounds and pattern.
duplicate-playbook-name
    irx run NAME finds playbooks by metadata.name: two files with one name make the choice ambiguous.
unknown-result-field
    steps.ID.FIELD names a field step results do not have (status, ok, stdout, data, ...); it would be undefined.
unused-param
    A declared param is never used in a template: remove it, or use it.
unused-target
    A declared target is never used by a step's on: remove it, or use it.
name-mismatch
    irx finds a playbook by file name first: name the file after metadata.name.
until-without-retries
    until: is checked between retries; without retries: the step runs once and until: does nothing.
ignored-on
    This kind of step runs on the control node; on: is ignored there.
diagnose-may-mutate
    A diagnose command looks like it changes the host (restart, kill, rm -...); check it only reads.
pipe-reader-stops-early
    Shell steps run under pipefail. grep -q and head stop reading at their first match or lines; the command
    writing into the pipe may then die of SIGPIPE and fail the step, or not, depending on timing. Read to the end
    (grep -c ... >/dev/null, sed -n 1p) or capture the output in a variable first.
secret-on-command-line
    A secret param must never be part of a command line (ps shows argv to every user): pass it in env: instead.
env-on-module
    env: sets a process environment for shell and command steps; a module takes its settings as args.
shell-module
    Run host commands as shell: or command: steps, which irx quotes and records, not through Ansible's
    command/shell/raw/script modules.
routes
    A routes file (kind: Routes) must match schemas/routes.schema.json, its matchers must parse and its playbooks
    must have what it names (docs/serve.md).
approvers
    An approvers file (kind: Approvers) must match schemas/approvers.schema.json and its rules name its own users
    and groups (docs/serve.md).
"""


def _entries(text: str) -> dict[str, tuple[str, str]]:
    """rule id -> (first line after the id, the indented lines below it joined)."""
    found: dict[str, tuple[str, str]] = {}
    rule = ""
    for line in text.strip().splitlines():
        if line.startswith("    "):
            short, full = found[rule]
            found[rule] = (short, f"{full} {line.strip()}".strip().replace(" +schema", " " + _SCHEMA_FIX))
        else:
            rule, _, short = line.partition(":")
            found[rule] = (short.strip(), "")
    return found


_READER = _entries(_READER_TEXT)
_SEMANTIC = {rule: full for rule, (_, full) in _entries(_SEMANTIC_TEXT).items()}


def rule_doc(rule: str) -> RuleDoc:
    """The description of ``rule``; an id not listed here (a schema keyword the messages do not name yet)
    still gets one."""
    from irx.rules import RULES

    if rule in _READER:
        short, full = _READER[rule]
        return RuleDoc(short, full)
    if rule in RULES or rule in _SEMANTIC:
        short = RULES.get(rule, rule.replace("-", " "))
        full = _SEMANTIC.get(rule, short)
        uri = f"{DOCS.replace('playbook-format.md', 'serve.md')}" if rule in {"routes", "approvers"} else HELP_URI
        return RuleDoc(short, full, uri)
    if rule.startswith("schema-"):
        keyword = rule.removeprefix("schema-").replace("-", " ")
        full = f"The value breaks the schema's {keyword} rule. {_SCHEMA_FIX}"
        return RuleDoc(f"a value the schema refuses ({keyword})", full)
    return RuleDoc(rule.replace("-", " "), rule.replace("-", " "))


def known_rules() -> list[str]:
    """Every rule id described here, sorted."""
    from irx.rules import RULES

    return sorted(set(_READER) | set(RULES) | set(_SEMANTIC))

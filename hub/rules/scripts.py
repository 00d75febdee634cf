"""Home Assistant's scripts: ``scripts.yaml`` and ``scripts/*.yaml`` beside the configuration, each a
mapping ``script_id: {alias, fields, variables, sequence, mode, ...}``.

A script's sequence is compiled by the rule parser exactly as a rule's actions are, so it is checked
at load the same way (entities, services, templates; errors at their file, line and key), and it
runs as a rule with no triggers: the same modes, runs and traces, and a ``delay`` that survives a
restart. Rules call scripts as HA's do: ``action: script.x`` waits for the script to finish,
``script.turn_on`` starts it and goes on, ``script.turn_off`` stops it. The ``fields`` a script
declares are checked wherever a call names them: at load when the data is written out, at run time
when a template makes it.

This module reads and compiles scripts; :mod:`hub.rules.script_calls` parses and runs the steps that
call them, :mod:`hub.rules.script_runs` runs them in the engine.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from hub.config import ConfigIssue, read_yaml
from hub.rules.model import MAX_NAME, MAX_TEXT, Mode
from hub.rules.parse import Rule, RuleParser

if TYPE_CHECKING:
    from hub.rules.context import RuleContext

SCRIPTS_FILE = "scripts.yaml"
SCRIPTS_DIR = "scripts"
#: HA's script ids: lower-case letters, digits and underscores (its docs forbid capitals and '-').
SCRIPT_ID = re.compile(r"^[a-z0-9_]{1,120}$")
RESERVED = ("trigger", "this", "wait", "repeat")
KEY_PREFIX = "script:"  # a script's run and trace key; rule ids cannot contain ':'


def script_files(config_dir: Path) -> list[Path]:
    files = [config_dir / SCRIPTS_FILE] if (config_dir / SCRIPTS_FILE).is_file() else []
    folder = config_dir / SCRIPTS_DIR
    if folder.is_dir():
        files += sorted(p for p in folder.glob("*.yaml") if p.is_file())
    return files


def run_key(script_id: str) -> str:
    return KEY_PREFIX + script_id


class ScriptError(ValueError):
    """A call the script cannot take (``field`` names the field), or a script that cannot run."""

    def __init__(self, field: str | None, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


# --- the shape of a script ---------------------------------------------------------------------------


class ScriptField(BaseModel):
    """HA's field: ``name``, ``description``, ``example`` and ``selector`` are for people and UIs;
    ``required`` and ``default`` are enforced by the hub."""

    model_config = ConfigDict(extra="forbid", str_max_length=MAX_TEXT)
    name: str | None = None
    description: str | None = None
    advanced: bool = False
    required: bool = False
    example: Any = None
    default: Any = None
    selector: Any = None

    @property
    def has_default(self) -> bool:
        return "default" in self.model_fields_set


class ScriptHead(BaseModel):
    model_config = ConfigDict(extra="forbid", str_max_length=MAX_NAME)
    alias: str | None = None
    description: str | None = Field(default=None, max_length=MAX_TEXT)
    icon: str | None = None
    fields: dict[str, ScriptField] = Field(default_factory=dict)
    variables: dict[str, Any] = Field(default_factory=dict)
    sequence: Any
    mode: Mode = "single"
    max: int = Field(default=10, ge=1, le=1000)
    max_exceeded: Literal["silent", "critical", "fatal", "error", "warning", "warn", "info", "debug", "notset"] | None = None
    trace: dict[str, Any] | None = None  # HA's stored_traces: accepted; the hub keeps the last 20

    @field_validator("fields", mode="before")
    @classmethod
    def _bare_fields(cls, value: Any) -> Any:
        """``fields: {title:}``: a field with nothing said about it."""
        return {k: ({} if v is None else v) for k, v in value.items()} if isinstance(value, dict) else value


@dataclass
class Script:
    id: str
    head: ScriptHead | None
    source: str | None
    rule: Rule | None = None  # the compiled sequence; None while loading, or when refused
    issues: list[ConfigIssue] = field(default_factory=list)

    @property
    def fields(self) -> dict[str, ScriptField]:
        return self.head.fields if self.head else {}

    def problems(self, data: dict) -> list[tuple[str, str]]:
        """(field, reason) for each thing wrong with a call's data: a field the script does not
        declare (when it declares any: with none, every value is a variable, as in HA) and a
        required field left out that has no default."""
        out = []
        fields = self.fields
        if fields:
            for name in data:
                if name not in fields:
                    out.append((str(name), f"script.{self.id} has no field {name!r}; its fields: {', '.join(fields)}"))
        for name, spec in fields.items():
            if spec.required and name not in data and not spec.has_default:
                out.append((name, f"script.{self.id} needs its required field {name!r}"))
        return out

    def variables(self, data: dict) -> dict:
        """The run's variables: the call's data over the fields' defaults."""
        return {**{n: f.default for n, f in self.fields.items() if f.has_default}, **data}

    def describe_fields(self) -> dict[str, Any]:
        return {n: f.model_dump(exclude_defaults=True) | {"required": f.required} for n, f in self.fields.items()}


# --- loading ---------------------------------------------------------------------------------------


class _Collect:
    """Holds a script's problems until its fate is known: a script is compiled again when a script it
    calls turns out to be refused, and only the last attempt's problems count."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple]] = []

    def issue(self, path: tuple, message: str) -> None:
        self.calls.append(("issue", (path, message)))

    def report(self, base: tuple, err: ValidationError, value: Any) -> None:
        self.calls.append(("report", (base, err, value)))

    def replay(self, doc: Any) -> None:
        for name, args in self.calls:
            getattr(doc, name)(*args)


def load(ctx: "RuleContext", config_dir: Path) -> list[ConfigIssue]:
    """Read every script into ``ctx.scripts`` (refused ones too, with their issues, so a rule calling
    one says why it cannot). Ids and fields are read first, so scripts can call scripts whatever
    their order; a script calling a refused script is refused in turn."""
    from hub.rules.loader import MAX_FILE_BYTES

    issues: list[ConfigIssue] = []
    docs = []
    entries: list[tuple[str, Any, Any, str]] = []
    seen: dict[str, str] = {}
    for path in script_files(config_dir):
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            issues.append(ConfigIssue(str(path), None, None, None,
                                      f"the file is {size} bytes; a scripts file may have at most {MAX_FILE_BYTES} "
                                      f"(split it into files in {SCRIPTS_DIR}/): none of its scripts is loaded"))
            continue
        data, doc = read_yaml(path)
        docs.append(doc)
        if data is None or data == {}:
            continue
        if not isinstance(data, dict):
            doc.issue((), "a scripts file is a mapping of script ids to scripts ('wake_up: {sequence: [...]}')")
            continue
        for sid, raw in data.items():
            line = doc.positions.get((sid,), (None, None))[0]
            source = f"{path}:{line}" if line else str(path)
            if not isinstance(sid, str) or not SCRIPT_ID.match(sid):
                doc.issue((sid,), f"{sid!r} is not a script id: use lower-case letters, digits and _ (as Home Assistant does)")
                continue
            if sid in seen:
                doc.issue((sid,), f"duplicate script id {sid!r} (first at {seen[sid]})")
                continue
            seen[sid] = source
            entries.append((sid, raw, doc, source))

    scripts: dict[str, Script] = {}
    pending: list[tuple[Script, Any, Any]] = []
    for sid, raw, doc, source in entries:
        start = len(doc.issues)
        script = Script(sid, _head(ctx, sid, raw, doc), source)
        if script.head is None:
            script.issues = doc.issues[start:]
        else:
            pending.append((script, raw, doc))
        scripts[sid] = script
    ctx.scripts = scripts

    while pending:
        refused = []
        for script, raw, doc in pending:
            collect = _Collect()
            script.rule = _compile(ctx, script, raw, collect)
            if script.rule is None:
                refused.append((script, doc, collect))
        if not refused:
            break
        for script, doc, collect in refused:
            start = len(doc.issues)
            collect.replay(doc)
            script.issues = doc.issues[start:] or [ConfigIssue(doc.file, None, None, script.id, "refused")]
        gone = {s.id for s, _, _ in refused}
        pending = [p for p in pending if p[0].id not in gone]
    for doc in docs:
        issues += doc.issues
    return issues


def _head(ctx: "RuleContext", sid: str, raw: Any, doc: Any) -> ScriptHead | None:
    if not isinstance(raw, dict):
        doc.issue((sid,), "a script is a mapping with at least a sequence of actions")
        return None
    if not RuleParser(ctx, doc, (sid,)).bounded(raw):
        return None
    try:
        head = ScriptHead.model_validate(raw)
    except ValidationError as err:
        doc.report((sid,), err, raw)
        return None
    bad = [n for n in head.fields if not n.isidentifier() or n in RESERVED]
    for name in bad:
        doc.issue((sid, "fields", name), f"{name!r} cannot be a field name: use letters, digits and _, "
                                         f"not {', '.join(RESERVED)}")
    return None if bad else head


def _compile(ctx: "RuleContext", script: Script, raw: dict, reporter: Any) -> Rule | None:
    head = script.head
    assert head is not None
    parser = RuleParser(ctx, reporter, (script.id,))
    variables = parser._variables_step(("variables",), ("variables",), head.variables) if head.variables else None
    steps = parser.sequence(("sequence",), (), head.sequence)
    if not parser.items(("sequence",), head.sequence, "action") and not parser.failed:
        parser.fail(("sequence",), "a script needs at least one action in its sequence")
    if parser.failed:
        return None
    digest = hashlib.sha256(json.dumps(raw, sort_keys=True, default=str).encode()).hexdigest()[:16]
    return Rule(id=run_key(script.id), alias=head.alias, description=head.description, mode=head.mode,
                max=head.max, enabled=True, triggers=[], conditions=[], actions=steps, raw=raw,
                source=script.source, digest=digest, variables=variables,
                this={"entity_id": f"script.{script.id}", "id": script.id, "alias": head.alias})

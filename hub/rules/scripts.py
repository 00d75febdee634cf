"""Home Assistant's scripts: ``scripts.yaml`` and ``scripts/*.yaml`` beside the configuration, each a
mapping ``script_id: {alias, fields, variables, sequence, mode, ...}``.

A script's sequence is compiled by the rule parser exactly as a rule's actions are, so it is checked
at load the same way (entities, services, templates; errors at their file, line and key), and it
runs as a rule with no triggers: the same modes, runs and traces, and a ``delay`` that survives a
restart. Rules call scripts as HA's do: ``action: script.x`` waits for the script to finish,
``script.turn_on`` starts it and goes on, ``script.turn_off`` stops it. The ``fields`` a script
declares are checked wherever a call names them: at load when the data is written out, at run time
when a template makes it.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from hub.config import ConfigIssue, read_yaml
from hub.rules import actions as A
from hub.rules.engine import LoadedRule
from hub.rules.expressions import ExpressionError
from hub.rules.model import MAX_NAME, MAX_TEXT, Mode, entity_list, is_template
from hub.rules.parse import Rule, RuleParser
from hub.rules.run import Run
from hub.rules.trace import Trace

if TYPE_CHECKING:
    from hub.rules.context import RuleContext
    from hub.rules.engine import RuleEngine
    from hub.rules.model import ServiceAction

log = logging.getLogger("hub.rules")

SCRIPTS_FILE = "scripts.yaml"
SCRIPTS_DIR = "scripts"
#: Scripts calling scripts (directly or through script.turn_on) nest at most this deep; a script
#: already in the chain is refused outright, so A -> B -> A is an error in the trace, not a hang.
MAX_CALL_DEPTH = 10
#: HA's script ids: lower-case letters, digits and underscores (its docs forbid capitals and '-').
SCRIPT_ID = re.compile(r"^[a-z0-9_]{1,120}$")
RESERVED = ("trigger", "this", "wait", "repeat")
LOG_LEVELS = {"critical": 50, "fatal": 50, "error": 40, "warning": 30, "warn": 30, "info": 20, "debug": 10, "notset": 0}
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


# --- steps that call scripts (parse.py's ``action: script.*``) ----------------------------------------


def parse_step(parser: RuleParser, path: tuple, pos: tuple, name: str, cfg: "ServiceAction", key: str) -> A.Step | None:
    service = name.split(".", 1)[1]
    if service in ("turn_on", "turn_off", "toggle"):
        return _control(parser, path, pos, service, cfg)
    if service == "reload":
        parser.fail(path + (key,), "script.reload: use 'hub rules reload' (POST /api/rules/reload), which reloads "
                                   "scripts with the rules")
        return None
    script = parser.ctx.scripts.get(service)
    if script is None:
        parser.fail(path + (key,), f"unknown script {service!r}; {_known(parser)}")
        return None
    if script.issues:
        parser.fail(path + (key,), f"script.{service} did not load (see its own errors at {script.source})")
        return None
    if cfg.target or cfg.entity_id is not None:
        parser.fail(path + ("target",), f"{name} takes no target: give its fields in data (or use script.turn_on "
                                        f"with target.entity_id: {name})")
        return None
    _check_fields(parser, path + ("data",), script, cfg.data)
    if parser.failed:
        return None
    return ScriptCall(pos, service, parser.value(path + ("data",), cfg.data), cfg.continue_on_error)


def _known(parser: RuleParser) -> str:
    return f"known: {', '.join(sorted(parser.ctx.scripts))}" if parser.ctx.scripts else "there are no scripts (scripts.yaml)"


def _check_fields(parser: RuleParser, path: tuple, script: Script, data: dict) -> None:
    for name, message in script.problems(data):
        parser.fail(path + ((name,) if name in data else ()), message)


def _control(parser: RuleParser, path: tuple, pos: tuple, service: str, cfg: "ServiceAction") -> A.Step | None:
    ids = _targets(parser, path, service, cfg)
    variables = None
    if service == "turn_on":
        for k in cfg.data:
            if k != "variables":
                parser.fail(path + ("data", k), f"script.turn_on takes data.variables (the script's fields), not {k!r}")
        raw = cfg.data.get("variables", {})
        if isinstance(raw, dict):
            for sid in ids:
                _check_fields(parser, path + ("data", "variables"), parser.ctx.scripts[sid], raw)
        elif not is_template(raw):
            parser.fail(path + ("data", "variables"), "variables is a mapping of field values (or a template making one)")
        if parser.failed:
            return None
        variables = parser.value(path + ("data", "variables"), raw)
    elif cfg.data:
        parser.fail(path + ("data",), f"script.{service} takes no data")
    if parser.failed or not ids:
        return None
    step: A.Step = {"turn_on": ScriptTurnOn, "turn_off": ScriptTurnOff, "toggle": ScriptToggle}[service](pos, ids, variables)
    step.continue_on_error = cfg.continue_on_error
    return step


def _targets(parser: RuleParser, path: tuple, service: str, cfg: "ServiceAction") -> list[str]:
    for k in cfg.target:
        if k != "entity_id":
            parser.fail(path + ("target", k), f"script.{service} takes target.entity_id: script.<id>; not {k!r}")
    ids: list[str] = []
    for where, value in ((("target", "entity_id"), cfg.target.get("entity_id")), (("entity_id",), cfg.entity_id)):
        if value is None:
            continue
        for entity_id in entity_list(value) if isinstance(value, (str, list)) else [value]:
            sid = entity_id[len("script."):] if isinstance(entity_id, str) and entity_id.startswith("script.") else None
            if sid is None or is_template(entity_id):
                parser.fail(path + where, f"script.{service} targets scripts by name (script.<id>), not {entity_id!r}")
            elif sid not in parser.ctx.scripts:
                parser.fail(path + where, f"unknown script {sid!r}; {_known(parser)}")
            elif parser.ctx.scripts[sid].issues:
                parser.fail(path + where, f"script.{sid} did not load (see its own errors at {parser.ctx.scripts[sid].source})")
            elif sid not in ids:
                ids.append(sid)
    if not ids and not parser.failed:
        parser.fail(path, f"script.{service} needs target.entity_id: script.<id>")
    return ids


class ScriptCall(A.Step):
    """``action: script.x``: runs the script and waits for it, as HA's direct call does. A script that
    fails fails the caller; one already running in single mode is logged and the caller goes on."""

    kind = "script"

    def __init__(self, pos: tuple, script_id: str, data: Callable[[dict], Any], continue_on_error: bool) -> None:
        super().__init__(pos)
        self.script_id = script_id
        self.data = data
        self.continue_on_error = continue_on_error

    async def run(self, run: Run, resume: A.Resume) -> Any:
        runner: ScriptRunner = run.engine.scripts
        child = runner.start(self.script_id, self.data(run.env) or {}, caller=run, blocking=True)
        if child.trace.outcome == "skipped":
            return {"script": self.script_id, "run_id": child.trace.run_id, "skipped": child.trace.error}
        try:
            await asyncio.shield(child.done)
        except asyncio.CancelledError:
            runner.cancel_run(child)  # the caller was stopped: so is what it waits for, as in HA
            raise
        trace = child.trace
        if trace.outcome == "error":
            raise A.ActionFailed(f"script.{self.script_id} failed: {trace.error}")
        return {"script": self.script_id, "run_id": trace.run_id, "outcome": trace.outcome}


class ScriptTurnOn(A.Step):
    """``script.turn_on``: starts each script and goes on without waiting."""

    kind = "script.turn_on"

    def __init__(self, pos: tuple, ids: list[str], variables: Callable[[dict], Any] | None) -> None:
        super().__init__(pos)
        self.ids = ids
        self.variables = variables

    async def run(self, run: Run, resume: A.Resume) -> Any:
        runner: ScriptRunner = run.engine.scripts
        data = (self.variables(run.env) if self.variables is not None else None) or {}
        started = []
        for sid in self.ids:
            child = runner.start(sid, data, caller=run, blocking=False)
            started.append({"script": sid, "run_id": child.trace.run_id, "outcome": child.trace.outcome})
        return {"started": started}


class ScriptTurnOff(A.Step):
    kind = "script.turn_off"

    def __init__(self, pos: tuple, ids: list[str], variables: Any = None) -> None:
        super().__init__(pos)
        self.ids = ids

    async def run(self, run: Run, resume: A.Resume) -> Any:
        runner: ScriptRunner = run.engine.scripts
        return {"stopped": {sid: runner.stop(sid) for sid in self.ids}}


class ScriptToggle(ScriptTurnOff):
    """Stops a running script, starts one that is not (HA's ``script.toggle``)."""

    kind = "script.toggle"

    async def run(self, run: Run, resume: A.Resume) -> Any:
        runner: ScriptRunner = run.engine.scripts
        result = {}
        for sid in self.ids:
            if runner.running(sid):
                result[sid] = {"stopped": runner.stop(sid)}
            else:
                result[sid] = {"started": runner.start(sid, {}, caller=run, blocking=False).trace.run_id}
        return result


# --- running ---------------------------------------------------------------------------------------


class ScriptRun(Run):
    """A run of a script: ``done`` resolves when it ends (a blocking caller waits on it), ``stack`` is
    the chain of scripts that led to it. A run called by a rule that waits for it is not saved when
    paused: the caller cannot be resumed after a restart, so resuming the script alone would run half
    of what the rule meant."""

    def __init__(self, *args: Any, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.stack: tuple[str, ...] = (self.loaded.id[len(KEY_PREFIX):],)
        self.keep_paused = True
        self.done: asyncio.Future = asyncio.get_running_loop().create_future()

    async def call(self, entity_id: str, command: str, args: dict) -> Any:
        return await self.engine.hub.commands.call(entity_id, command, args, source=self.rule.id)

    def pause(self, pos: tuple, due: float) -> None:
        if self.keep_paused:
            super().pause(pos, due)

    def finish(self) -> None:
        if not self.done.done():
            self.done.set_result(self.trace.outcome)

    async def execute(self) -> None:
        try:
            await super().execute()
        finally:
            self.finish()


@dataclass
class LoadedScript(LoadedRule):
    run_class: ClassVar[type] = ScriptRun
    script: Script | None = None


class ScriptRunner:
    """The engine's scripts: their runs, modes and traces, kept apart from the rules' so
    ``/api/rules`` lists rules only."""

    def __init__(self, engine: "RuleEngine") -> None:
        self.engine = engine
        self.loaded: dict[str, LoadedScript] = {}

    def by_key(self, key: str) -> LoadedScript | None:
        return self.loaded.get(key[len(KEY_PREFIX):]) if key.startswith(KEY_PREFIX) else None

    def apply(self, scripts: dict[str, Script]) -> None:
        """Swap in the scripts just loaded; an unchanged script keeps its runs."""
        old, new = self.loaded, {}
        for sid, script in scripts.items():
            previous = old.get(sid)
            if (previous is not None and previous.rule is not None and script.rule is not None
                    and previous.rule.digest == script.rule.digest):
                previous.source, previous.script = script.source, script
                new[sid] = previous
                continue
            if previous is not None:
                self._drop(previous)
            new[sid] = LoadedScript(run_key(sid), script.rule, script.issues, script.source, script=script)
        for sid, previous in old.items():
            if sid not in new:
                self._drop(previous)
                self.engine.traces.forget(previous.id)
        self.loaded = new

    def _drop(self, lr: LoadedScript) -> None:
        self._unqueue(lr)
        self.engine._disarm(lr, drop_pending=True)

    def _unqueue(self, lr: LoadedScript) -> None:
        now = self.engine.hub.now()
        for run in list(lr.queue):
            run.trace.finish("cancelled", now)
            run.finish()
        lr.queue.clear()

    def running(self, sid: str) -> bool:
        lr = self.loaded.get(sid)
        return bool(lr and (lr.runs or lr.queue))

    def start(self, sid: str, data: Any, *, caller: Run | None = None, blocking: bool = False,
              description: str | None = None) -> ScriptRun:
        """Start a run of the script in its mode; raises ScriptError for a call it cannot take."""
        lr = self.loaded.get(sid)
        if lr is None or lr.script is None:
            raise ScriptError(None, f"unknown script {sid!r}")
        if lr.rule is None:
            raise ScriptError(None, f"script.{sid} is not loaded: {'; '.join(str(i) for i in lr.issues)}")
        if not isinstance(data, dict):
            raise ScriptError(None, f"the data for script.{sid} must be a mapping of field values, got {type(data).__name__}")
        stack = getattr(caller, "stack", ())
        if sid in stack:
            raise ScriptError(None, f"script.{sid} calls itself ({' -> '.join(stack + (sid,))}): not run")
        if len(stack) >= MAX_CALL_DEPTH:
            raise ScriptError(None, f"scripts nested more than {MAX_CALL_DEPTH} deep ({' -> '.join(stack + (sid,))}): not run")
        problems = lr.script.problems(data)
        if problems:
            raise ScriptError(problems[0][0], "; ".join(message for _, message in problems))
        now = self.engine.hub.now()
        if description is None:
            description = (f"called by {caller.rule.id}" if caller is not None else "run")
        env = {**lr.script.variables(data), "this": lr.rule.this}
        trace = Trace(lr.id, {"platform": "script", "id": "call", "description": description,
                              "variables": data}, now)
        run = ScriptRun(self.engine, lr, env, trace)
        run.stack = stack + (sid,)
        run.keep_paused = not blocking
        lr.last_triggered = now
        if lr.rule.variables is not None:
            try:
                lr.rule.variables.apply(env)
            except (ExpressionError, TypeError, ValueError) as exc:
                trace.finish("error", now, f"variables: {exc}")
                self.engine.traces.add(trace)
                run.finish()
                return run
        self.engine.traces.add(trace)
        self.engine.dispatch(lr, run)
        if trace.outcome == "skipped":
            run.finish()
            level = (lr.script.head.max_exceeded if lr.script.head else None) or "warning"
            if level != "silent":  # HA's max_exceeded: how loudly a refused run is logged
                log.log(LOG_LEVELS[level], "script.%s: %s", sid, trace.error)
        return run

    def stop(self, sid: str) -> int:
        """Stop every run of the script, queued ones too; how many there were."""
        lr = self.loaded.get(sid)
        if lr is None:
            return 0
        count = len(lr.runs) + len(lr.queue)
        self._unqueue(lr)
        for run in list(lr.runs):
            if run.task is not None:
                run.task.cancel()
        return count

    def cancel_run(self, run: ScriptRun) -> None:
        lr = run.loaded
        if run in lr.queue:
            lr.queue.remove(run)
            run.trace.finish("cancelled", self.engine.hub.now())
            run.finish()
        elif run.task is not None:
            run.task.cancel()

    def cancel_all(self) -> list[Run]:
        """For the engine's stop: every running script run cancelled (and returned, to be awaited)."""
        runs: list[Run] = []
        for lr in self.loaded.values():
            self._unqueue(lr)
            for run in lr.runs:
                if run.task is not None:
                    run.task.cancel()
                    runs.append(run)
        return runs

"""The steps that call scripts, as HA writes them: ``action: script.x`` (runs it and waits),
``script.turn_on`` (starts it, with ``data.variables``), ``script.turn_off`` and ``script.toggle``.

Each is checked when the rule (or script) holding it loads: the script exists and loaded, and the
data fit its ``fields``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from hub.rules import actions as A
from hub.rules.model import entity_list, is_template
from hub.rules.parse import RuleParser
from hub.rules.scripts import Script

if TYPE_CHECKING:
    from hub.rules.model import ServiceAction
    from hub.rules.run import Run
    from hub.rules.script_runs import ScriptRunner


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
    return ScriptCall(pos, service, parser.value(path + ("data",), cfg.data), cfg.continue_on_error,
                      cfg.response_variable)


def _known(parser: RuleParser) -> str:
    return f"known: {', '.join(sorted(parser.ctx.scripts))}" if parser.ctx.scripts else "there are no scripts (scripts.yaml)"


def _check_fields(parser: RuleParser, path: tuple, script: Script, data: dict) -> None:
    for name, message in script.problems(data):
        parser.fail(path + ((name,) if name in data else ()), message)


def _control(parser: RuleParser, path: tuple, pos: tuple, service: str, cfg: "ServiceAction") -> A.Step | None:
    ids = _targets(parser, path, service, cfg)
    if cfg.response_variable is not None:
        parser.fail(path + ("response_variable",), f"script.{service} gives no response: call the script "
                                                   f"(action: script.<id>) to wait for its response")
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
    fails fails the caller; one already running in single mode is logged and the caller goes on.
    ``response_variable`` receives what the script's ``stop`` returned (None if nothing)."""

    kind = "script"

    def __init__(self, pos: tuple, script_id: str, data: Callable[[dict], Any], continue_on_error: bool,
                 response_variable: str | None = None) -> None:
        super().__init__(pos)
        self.script_id = script_id
        self.data = data
        self.continue_on_error = continue_on_error
        self.response_variable = response_variable

    async def run(self, run: "Run", resume: A.Resume) -> Any:
        runner: ScriptRunner = run.engine.scripts
        child = runner.start(self.script_id, self.data(run.env) or {}, caller=run, blocking=True)
        if self.response_variable is not None:
            run.env[self.response_variable] = None
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
        if self.response_variable is not None:
            run.env[self.response_variable] = child.response
            return {"script": self.script_id, "run_id": trace.run_id, "outcome": trace.outcome, "response": child.response}
        return {"script": self.script_id, "run_id": trace.run_id, "outcome": trace.outcome}


class ScriptTurnOn(A.Step):
    """``script.turn_on``: starts each script and goes on without waiting."""

    kind = "script.turn_on"

    def __init__(self, pos: tuple, ids: list[str], variables: Callable[[dict], Any] | None) -> None:
        super().__init__(pos)
        self.ids = ids
        self.variables = variables

    async def run(self, run: "Run", resume: A.Resume) -> Any:
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

    async def run(self, run: "Run", resume: A.Resume) -> Any:
        runner: ScriptRunner = run.engine.scripts
        return {"stopped": {sid: runner.stop(sid) for sid in self.ids}}


class ScriptToggle(ScriptTurnOff):
    """Stops a running script, starts one that is not (HA's ``script.toggle``)."""

    kind = "script.toggle"

    async def run(self, run: "Run", resume: A.Resume) -> Any:
        runner: ScriptRunner = run.engine.scripts
        result = {}
        for sid in self.ids:
            if runner.running(sid):
                result[sid] = {"stopped": runner.stop(sid)}
            else:
                result[sid] = {"started": runner.start(sid, {}, caller=run, blocking=False).trace.run_id}
        return result

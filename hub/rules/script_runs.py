"""Scripts in the engine: their runs (in the script's mode, with traces, and saved when paused in
a ``delay``), and how a run is started, stopped and waited for."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from hub.rules.engine import LoadedRule
from hub.rules.expressions import ExpressionError
from hub.rules.run import Run
from hub.rules.scripts import KEY_PREFIX, Script, ScriptError, run_key
from hub.rules.trace import Trace

if TYPE_CHECKING:
    from hub.rules.engine import RuleEngine

log = logging.getLogger("hub.rules")

#: Scripts calling scripts (directly or through script.turn_on) nest at most this deep; a script
#: already in the chain is refused outright, so A -> B -> A is an error in the trace, not a hang.
MAX_CALL_DEPTH = 10
LOG_LEVELS = {"critical": 50, "fatal": 50, "error": 40, "warning": 30, "warn": 30, "info": 20, "debug": 10, "notset": 0}


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

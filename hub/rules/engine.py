"""The rule engine: loads rules, arms their triggers, runs them in their mode, keeps their traces.

It works from the hub's bus, states and command gate only: no network, no broker, no chain, so
rules keep running offline. One bus subscription serves every state-based trigger through an index
by entity id; ``for:`` timers and runs paused in a ``delay`` are saved (batched, like history) and
picked up again after a restart.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from hub.config import ConfigIssue
from hub.core.events import StateChanged
from hub.rules.context import RuleContext
from hub.rules.model import SHUTDOWN_GRACE
from hub.rules.parse import Rule
from hub.rules.run import Run
from hub.rules.expressions import ExpressionError
from hub.rules.trace import Trace, TraceLog, plain
from hub.rules.triggers import BUILTIN_WATCHES, PluginWatch, StartWatch, Watch

if TYPE_CHECKING:
    from hub.runtime import Hub


@dataclass
class LoadedRule:
    id: str
    rule: Rule | None
    issues: list[ConfigIssue] = field(default_factory=list)
    source: str | None = None
    enabled: bool = True
    watches: list[Watch] = field(default_factory=list)
    runs: set[Run] = field(default_factory=set)
    queue: deque = field(default_factory=deque)
    last_triggered: float | None = None

    @property
    def status(self) -> str:
        if self.rule is None:
            return "error"
        if not self.enabled:
            return "disabled"
        return "running" if self.runs else "on"


class RuleEngine:
    def __init__(self, hub: "Hub") -> None:
        self.hub = hub
        self.scheduler = hub.scheduler
        self.rules_ctx = RuleContext.for_hub(hub)
        self.log = logging.getLogger("hub.rules")
        self.traces = TraceLog()
        self.rules: dict[str, LoadedRule] = {}
        self.issues: list[ConfigIssue] = []
        self.on_start: list = []
        self.on_shutdown: list = []  # the armed ``homeassistant: shutdown`` triggers
        #: The scenes in force: those loaded with the rules last applied. Not ``rules_ctx.scenes``,
        #: which a check of the files (``hub rules check``) replaces without applying anything.
        self.scenes: dict[str, Any] = {}
        self._shutdown_fired = False
        self.webhooks: dict[str, list] = {}  # webhook_id -> its armed webhook triggers
        self._index: dict[str, list[Watch]] = {}
        self._unsubscribe = hub.bus.subscribe(StateChanged, self._on_state)
        self._dirty: dict[str, tuple[str, str, dict] | None] = {}
        self._flush_handle: asyncio.TimerHandle | None = None
        self._stopping = False
        self._restored: dict[str, dict] = {}
        from hub.rules.script_runs import ScriptRunner  # it builds on this module

        self.scripts = ScriptRunner(self)

    # --- the index of state-based triggers -----------------------------------------------------------
    def watch_entity(self, entity_id: str, watch: Watch) -> None:
        self._index[entity_id] = [*self._index.get(entity_id, ()), watch]

    def unwatch_entity(self, entity_id: str, watch: Watch) -> None:
        remaining = [w for w in self._index.get(entity_id, ()) if w is not watch]
        if remaining:
            self._index[entity_id] = remaining
        else:
            self._index.pop(entity_id, None)

    def _on_state(self, event: StateChanged) -> None:
        watches = self._index.get(event.entity_id)
        if not watches:
            return
        for watch in watches:
            try:
                watch.on_state(event)
            except Exception:  # noqa: BLE001 - one broken trigger must not silence the others
                self.log.exception("trigger %s failed on %s", watch.key, event.entity_id)

    # --- loading -----------------------------------------------------------------------------------
    def apply(self, loaded: list[LoadedRule], issues: list[ConfigIssue]) -> dict[str, list[str]]:
        """Swap in a new set of rules. Rules whose definition did not change keep their armed
        triggers and their running runs; changed and removed ones are stopped first."""
        settings = self.hub.store.rule_settings() if self.hub.store else {}
        self.scripts.apply(self.rules_ctx.scripts)  # loaded with the rules (hub.rules.scripts.load)
        old = self.rules
        new: dict[str, LoadedRule] = {}
        summary: dict[str, list[str]] = {"added": [], "changed": [], "removed": [], "unchanged": [], "errors": []}
        for lr in loaded:
            lr.enabled = settings.get(lr.id, lr.rule.enabled if lr.rule else True)
            previous = old.get(lr.id)
            if (previous is not None and previous.rule is not None and lr.rule is not None
                    and previous.rule.digest == lr.rule.digest and previous.enabled == lr.enabled):
                previous.source = lr.source
                new[lr.id] = previous
                summary["unchanged"].append(lr.id)
                continue
            if previous is not None:
                self._disarm(previous, drop_pending=True)
            new[lr.id] = lr
            summary["errors" if lr.rule is None else "changed" if previous else "added"].append(lr.id)
        for rule_id, previous in old.items():
            if rule_id not in new:
                self._disarm(previous, drop_pending=True)
                self.traces.forget(rule_id)  # a removed rule's traces (and what they hold) go with it
                summary["removed"].append(rule_id)
        self.rules = new
        self.issues = issues
        self.scenes = self.rules_ctx.scenes
        for lr in new.values():
            if lr.rule is not None and lr.enabled and not lr.watches:
                self._arm(lr)
        return summary

    def _arm(self, lr: LoadedRule) -> None:
        rule = lr.rule
        assert rule is not None
        lr.watches = [self._watch(f"{rule.id}|{i}", kind, cfg, lambda v, lr=lr, i=i: self._fire(lr, v, i))
                      for i, (kind, cfg) in enumerate(rule.triggers)]
        for watch in lr.watches:
            try:
                watch.attach()
            except Exception:  # noqa: BLE001
                self.log.exception("rule %s: trigger %s could not be armed", rule.id, watch.key)
        for watch in lr.watches:
            self._restore_timers(rule, watch)

    def _watch(self, key: str, kind: str, cfg: Any, fire) -> Watch:
        if kind == "hub_start":
            return StartWatch(self, key, cfg.id or key.split("|")[1], fire)
        if kind in self.hub.rule_triggers:
            trigger_id, config = cfg
            _, _, attach = self.hub.rule_triggers[kind]
            return PluginWatch(self, key, trigger_id or key.split("|")[1], fire, kind, config, attach)
        return BUILTIN_WATCHES[type(cfg)](self, key, cfg.id or key.split("|")[-1], fire, cfg)

    def _disarm(self, lr: LoadedRule, *, drop_pending: bool) -> None:
        for watch in lr.watches:
            try:
                watch.detach()
            except Exception:  # noqa: BLE001
                self.log.exception("rule %s: trigger %s could not be disarmed", lr.id, watch.key)
        lr.watches = []
        for run in [*lr.runs, *lr.queue]:
            if run.task is not None:
                run.task.cancel()
        lr.queue.clear()
        if drop_pending:
            for key in [k for k in self._restored if self._restored[k]["rule_id"] == lr.id]:
                self._restored.pop(key)
            prefix_t, prefix_r = f"{lr.id}|", f"run|{lr.id}|"
            for key in list(self._dirty):
                if key.startswith((prefix_t, prefix_r)):
                    self._dirty[key] = None
            self._drop_saved(lr.id)

    def attach_temporary(self, triggers: list[tuple[str, Any]], fire) -> Any:
        """For ``wait_for``: arm triggers outside any rule; returns a function that disarms them."""
        watches = [self._watch(f"wait|{id(fire)}|{i}", kind, cfg, fire) for i, (kind, cfg) in enumerate(triggers)]
        attached: list[Watch] = []

        def detach() -> None:
            for watch in attached:
                watch.detach()

        try:
            for watch in watches:
                watch.attach()
                attached.append(watch)
        except BaseException:  # a listener left behind would outlive its run and fire forever
            detach()
            raise
        return detach

    # --- enable / disable ----------------------------------------------------------------------------
    def set_enabled(self, rule_id: str, enabled: bool) -> LoadedRule:
        lr = self.rules[rule_id]
        if self.hub.store is not None:
            self.hub.store.set_rule_enabled(rule_id, enabled)
        if lr.enabled == enabled:
            return lr
        lr.enabled = enabled
        if lr.rule is not None:
            if enabled:
                self._arm(lr)
            else:
                self._disarm(lr, drop_pending=True)
        return lr

    # --- running -----------------------------------------------------------------------------------
    def _fire(self, lr: LoadedRule, variables: dict, index: int | None = None) -> None:
        rule = lr.rule
        if rule is None or not lr.enabled or self._stopping:
            return
        now = self.hub.now()
        lr.last_triggered = now
        env = {"trigger": variables, "this": rule.this}
        trace = Trace(rule.id, variables, now)
        own = rule.trigger_variables[index] if index is not None and index < len(rule.trigger_variables) else None
        # Home Assistant's order: the trigger's variables, then the rule's, all before the conditions
        for step in (own, rule.variables):
            if step is None:
                continue
            try:
                step.apply(env)
            except (ExpressionError, TypeError, ValueError) as exc:
                trace.finish("error", now, f"variables: {exc}")
                self.traces.add(trace)
                return
        for condition in rule.conditions:
            if not condition.check(env, trace.conditions):
                trace.finish("condition_failed", now)
                self.traces.add(trace)
                return
        self.traces.add(trace)
        self.dispatch(lr, Run(self, lr, env, trace))

    def dispatch(self, lr: LoadedRule, run: Run) -> None:
        """Start a run in its rule's (or script's) mode: at once, queued, or skipped."""
        rule, trace, now = lr.rule, run.trace, self.hub.now()
        assert rule is not None
        mode = rule.mode
        if mode == "single" and lr.runs:
            trace.finish("skipped", now, "already running (mode: single)")
        elif mode == "restart":
            for other in list(lr.runs):
                if other.task is not None:
                    other.task.cancel()
            self._start(run)
        elif mode == "queued" and lr.runs:
            if len(lr.queue) >= rule.max:
                trace.finish("skipped", now, f"queue full (max {rule.max})")
            else:
                trace.outcome = "queued"
                lr.queue.append(run)
        elif mode == "parallel" and len(lr.runs) >= rule.max:
            trace.finish("skipped", now, f"{rule.max} runs already running (max)")
        else:
            self._start(run)

    def _start(self, run: Run) -> None:
        run.loaded.runs.add(run)
        run.task = asyncio.get_running_loop().create_task(run.execute(), name=f"rule:{run.rule.id}")

    def run_done(self, run: Run) -> None:
        lr = run.loaded
        lr.runs.discard(run)
        if not self._stopping and lr.queue and lr.rule is not None and lr.rule.mode == "queued":
            self._start(lr.queue.popleft())

    # --- what survives a restart ---------------------------------------------------------------------
    def pending_put(self, key: str, data: dict) -> None:
        if key.startswith("wait|"):
            return  # wait_for timers live and die with their run
        rule_id = key.split("|", 1)[0]
        lr = self.rules.get(rule_id)
        digest = lr.rule.digest if lr and lr.rule else ""
        self._dirty[key] = (rule_id, digest, {"kind": "for", **plain(data)})
        self._schedule_flush()

    def pending_drop(self, key: str) -> None:
        if key.startswith("wait|") or self._stopping:
            return
        self._dirty[key] = None
        self._schedule_flush()

    def save_paused(self, run: Run, path: list, due: float) -> None:
        self._dirty[run.key] = (run.rule.id, run.rule.digest, {"kind": "run", "path": path, "due": due,
                                                                "env": plain(run.env)})
        self._schedule_flush()

    def drop_paused(self, run: Run) -> None:
        if not self._stopping:
            self.pending_drop(run.key)

    def _drop_saved(self, rule_id: str) -> None:
        if self.hub.store is None:
            return
        for record in self.hub.store.load_rule_pending():
            if record["rule_id"] == rule_id:
                self._dirty[record["key"]] = None
        self._schedule_flush()

    def _schedule_flush(self) -> None:
        if self._flush_handle is None and not self._stopping:
            loop = asyncio.get_running_loop()
            self._flush_handle = loop.call_later(self.hub.core.commit_interval, lambda: loop.create_task(self.flush()))

    async def flush(self) -> None:
        self._flush_handle = None
        if not self._dirty or self.hub.store is None:
            return
        dirty, self._dirty = self._dirty, {}
        upserts = [(k, v[0], v[1], v[2]) for k, v in dirty.items() if v is not None]
        deletes = [k for k, v in dirty.items() if v is None]
        try:
            await asyncio.to_thread(self.hub.store.save_rule_pending, upserts, deletes)
        except Exception:  # noqa: BLE001
            self.log.exception("saving %d pending rule timers failed; retrying", len(dirty))
            self._dirty = {**dirty, **self._dirty}
            self._schedule_flush()

    def _restore_timers(self, rule: Rule, watch: Watch) -> None:
        for key, record in list(self._restored.items()):
            if record["data"]["kind"] == "for" and key.startswith(watch.key + "|"):
                self._restored.pop(key)
                if record["digest"] != rule.digest or not hasattr(watch, "restore"):
                    self._dirty[key] = None
                    continue
                entity_id = key[len(watch.key) + 1:]
                data = record["data"]
                watch.restore(entity_id, data["due"], data["held"], data["variables"])

    def _restore_runs(self) -> None:
        for key, record in list(self._restored.items()):
            data = record["data"]
            if data["kind"] != "run":
                continue
            self._restored.pop(key)
            self._dirty[key] = None  # the resumed run saves itself again under its new key
            lr = self.rules.get(record["rule_id"]) or self.scripts.by_key(record["rule_id"])
            if lr is None or lr.rule is None or not lr.enabled or lr.rule.digest != record["digest"]:
                self.log.info("rule %s changed or is gone: a run paused before the restart is dropped", record["rule_id"])
                continue
            env = data["env"]
            trace = Trace(lr.id, {**env.get("trigger", {}), "description": "resumed after a restart"}, self.hub.now())
            self.traces.add(trace)
            run_class = getattr(lr, "run_class", Run)  # a script's run, or a rule's
            self._start(run_class(self, lr, env, trace, resume_path=data["path"], resume_due=data["due"]))
        self._schedule_flush()

    # --- start and stop ----------------------------------------------------------------------------
    async def start(self, loaded: list[LoadedRule], issues: list[ConfigIssue]) -> None:
        if self.hub.store is not None:
            self._restored = {r["key"]: r for r in await asyncio.to_thread(self.hub.store.load_rule_pending)}
        self.apply(loaded, issues)
        self._restore_runs()
        for key in list(self._restored):  # timers of triggers that no longer exist
            self._dirty[key] = None
        self._restored.clear()
        for callback in list(self.on_start):
            callback()

    async def run_shutdown_rules(self) -> None:
        """Fire the ``homeassistant: shutdown`` triggers and let their runs finish for at most
        ``SHUTDOWN_GRACE`` seconds (of the hub's clock, and of real time as a backstop), while the
        plugins and drivers still run, so an "all lights off at shutdown" reaches the lights. Runs
        still going then are cancelled by ``stop``, named in the log. Once per engine."""
        if self._shutdown_fired or self._stopping:
            return
        self._shutdown_fired = True
        for callback in list(self.on_shutdown):
            try:
                callback()
            except Exception:  # noqa: BLE001 - one broken rule must not keep the others from running
                self.log.exception("a shutdown trigger failed")
        if not self._shutdown_pending():
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + SHUTDOWN_GRACE
        elapsed = loop.create_future()
        timer = self.scheduler.call_later(SHUTDOWN_GRACE, lambda: elapsed.done() or elapsed.set_result(None))
        try:
            while (tasks := self._shutdown_pending()) and not elapsed.done() and loop.time() < deadline:
                await asyncio.wait([*tasks, elapsed], timeout=deadline - loop.time(), return_when=asyncio.FIRST_COMPLETED)
        finally:
            timer.cancel()
        cut_runs = [run for lr in self.rules.values() for run in [*lr.runs, *lr.queue] if _at_shutdown(run)]
        for run in cut_runs:  # a run of the stop is not resumed at the next start, as a paused one would be
            self._dirty[run.key] = None
        cut = sorted({run.rule.id for run in cut_runs})
        if cut:
            self.log.warning("rules %s: their shutdown runs did not finish within %g s and are cancelled",
                             ", ".join(cut), SHUTDOWN_GRACE)

    def _shutdown_pending(self) -> list[asyncio.Task]:
        """The tasks a shutdown run waits for: its own, and those ahead of it in a queued rule."""
        tasks: list[asyncio.Task] = []
        for lr in self.rules.values():
            queued = any(_at_shutdown(run) for run in lr.queue)
            tasks += [run.task for run in lr.runs if run.task is not None and (queued or _at_shutdown(run))]
        return tasks

    async def stop(self) -> None:
        await self.run_shutdown_rules()
        self._stopping = True
        self._unsubscribe()
        runs = [run for lr in self.rules.values() for run in lr.runs]
        for lr in self.rules.values():
            for watch in lr.watches:
                watch.detach()
            for run in lr.runs:
                if run.task is not None:
                    run.task.cancel()
        runs += self.scripts.cancel_all()
        await asyncio.gather(*(r.task for r in runs if r.task is not None), return_exceptions=True)
        if self._flush_handle is not None:
            self._flush_handle.cancel()
        await self.flush()


def _at_shutdown(run: Run) -> bool:
    trigger = run.env.get("trigger") or {}
    return trigger.get("platform") == "homeassistant" and trigger.get("event") == "shutdown"

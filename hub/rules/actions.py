"""Actions compiled to steps, and how a sequence of them runs.

A step knows its position in the rule (``pos``: the indexes and branch markers that lead to it), so
a run paused in a ``delay`` can be saved and, after a restart, resumed at exactly that step: the
sequence skips to the saved index, ``choose`` goes straight to the saved branch, ``repeat`` to the
saved iteration. Home Assistant forgets such runs; users asked for them to survive.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from hub.core.commands import CommandError
from hub.core.events import CustomEvent, StateChanged
from hub.core.supervisor import is_hub_cancellation
from hub.rules.conditions import Condition
from hub.rules.expressions import ExpressionError
from hub.rules.model import parse_duration
from hub.rules.trace import bounded_result

if TYPE_CHECKING:
    from hub.rules.run import Run

Pos = tuple  # e.g. (2, "choose", 0, 1): action 2, first option, its second step
Resume = list | None


class StopRun(Exception):
    def __init__(self, reason: str, error: bool = False, response: dict | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.error = error
        self.response = response  # a script's response (HA's stop with response_variable)


class ActionFailed(Exception):
    pass


def path_text(pos: Pos) -> str:
    return "action/" + "/".join(str(p) for p in pos)


class Step:
    kind = "step"

    def __init__(self, pos: Pos) -> None:
        self.pos = pos
        self.path = path_text(pos)

    async def execute(self, run: "Run", resume: Resume) -> None:
        started = time.perf_counter()
        entry: dict[str, Any] = {"path": self.path, "action": self.kind, "started": run.now()}
        run.trace.steps.append(entry)
        try:
            result = await self.run(run, resume)
            if result is not None:
                entry["result"] = bounded_result(result)
        except (StopRun, asyncio.CancelledError):
            raise
        except (ActionFailed, ExpressionError, CommandError, ValueError) as exc:
            entry["error"] = str(exc)
            raise ActionFailed(f"{self.path} ({self.kind}): {exc}") from exc
        finally:
            entry["duration_ms"] = round((time.perf_counter() - started) * 1000, 3)

    async def run(self, run: "Run", resume: Resume) -> Any:
        raise NotImplementedError


async def run_sequence(steps: list[Step], run: "Run", resume: Resume) -> None:
    start = resume[0] if resume else 0
    for i in range(start, len(steps)):
        try:
            await steps[i].execute(run, resume[1:] if resume and i == start else None)
        except ActionFailed:
            # Home Assistant's continue_on_error: the error stays in the trace, the run goes on
            if not getattr(steps[i], "continue_on_error", False):
                raise


class ServiceCall(Step):
    """A Home Assistant service (``action: light.turn_on``): its data is translated per target
    entity to the hub's commands (:mod:`hub.rules.ha_services`) when the run renders it."""

    kind = "service"

    def __init__(self, pos: Pos, service: str, targets: list[tuple[str, str]],
                 translate: Callable[[str, dict], list[tuple[str, dict]]], data: Callable[[dict], Any],
                 continue_on_error: bool) -> None:
        super().__init__(pos)
        self.service = service
        self.targets = targets  # (entity_id, hub command)
        self.translate = translate
        self.data = data
        self.continue_on_error = continue_on_error
        self.templated: list = []  # (renderer of entity ids, the service): resolved per run

    def _rendered_targets(self, run: "Run") -> list[tuple[str, str]]:
        """The entities a templated ``entity_id`` names this run, checked as the load checks a
        literal one: it exists, and the service applies to it."""
        found: list[tuple[str, str]] = []
        for render, service in self.templated:
            value = render(run.env)
            ids = value if isinstance(value, (list, tuple)) else str(value).split(",")
            for entity_id in (str(i).strip() for i in ids):
                entry = run.engine.hub.entities.get(entity_id)
                if entry is None:
                    raise ActionFailed(f"unknown entity {entity_id!r} (from a templated entity_id)")
                command = service.command_for(entry.capability)
                if command is None:
                    raise ActionFailed(f"{entity_id} is a {entry.capability}: {self.service} does not apply to it")
                if (entity_id, command) not in found:
                    found.append((entity_id, command))
        return found

    async def run(self, run: "Run", resume: Resume) -> Any:
        data = self.data(run.env) or {}
        sent, errors = [], []
        targets = self.targets + [t for t in self._rendered_targets(run) if t not in self.targets] if self.templated else self.targets
        for entity_id, command in targets:
            try:
                for cmd, args in self.translate(command, data):
                    await run.call(entity_id, cmd, args)
                    sent.append({"entity_id": entity_id, "command": cmd, "args": args})
            except CommandError as exc:
                if not self.continue_on_error:
                    raise
                errors.append(f"{entity_id}: {exc.message}")
        return {"service": self.service, "commands": sent, **({"errors": errors} if errors else {})}


class SetVariables(Step):
    """HA's ``variables`` step (and a rule's ``variables:``): each rendered in order, so a later one
    can use an earlier one; they stay for the rest of the run."""

    kind = "variables"

    def __init__(self, pos: Pos, variables: list[tuple[str, Callable[[dict], Any]]]) -> None:
        super().__init__(pos)
        self.variables = variables

    def apply(self, env: dict) -> dict:
        values = {}
        for name, render in self.variables:
            env[name] = values[name] = render(env)
        return values

    async def run(self, run: "Run", resume: Resume) -> Any:
        return self.apply(run.env)


class Notify(Step):
    """``notify.*`` and ``persistent_notification.create``: the message goes to every plugin that
    implements ``hub_notify`` (the MQTT bridge publishes it on ``<prefix>/notify``), out as a
    ``notify`` event on the bus (what a rule's ``wait_for`` or a plugin listens to), and to the log at
    warning level, where ``hub logs`` shows it even when no plugin delivers notifications."""

    kind = "notify"

    def __init__(self, pos: Pos, service: str, data: Callable[[dict], Any], continue_on_error: bool = False) -> None:
        super().__init__(pos)
        self.service = service
        self.data = data
        self.continue_on_error = continue_on_error

    async def run(self, run: "Run", resume: Resume) -> Any:
        data = dict(self.data(run.env) or {})
        payload = {"service": self.service, "message": str(data.get("message", "")), **{
            k: data[k] for k in ("title", "data", "target", "notification_id") if k in data}}
        hub = run.engine.hub
        hub.bus.publish(CustomEvent(run.now(), "notify", payload))
        title = f"{payload['title']}: " if payload.get("title") else ""
        logging.getLogger(f"hub.rules.{run.rule.id}").warning("%s%s", title, payload["message"])
        outcome = await hub.notify({**payload, "source": f"rule:{run.rule.id}"})
        result = {**payload, "delivered_to": sorted(outcome["delivered"])}
        if outcome["errors"]:
            failed = "; ".join(f"plugin {name}: {msg}" for name, msg in sorted(outcome["errors"].items()))
            if not self.continue_on_error:
                raise ActionFailed(f"{self.service}: not delivered by {failed}")
            result["errors"] = outcome["errors"]
        return result


class Call(Step):
    kind = "call"

    def __init__(self, pos: Pos, entity_ids: list[str], command: str, args: Callable[[dict], Any], continue_on_error: bool) -> None:
        super().__init__(pos)
        self.entity_ids = entity_ids
        self.command = command
        self.args = args
        self.continue_on_error = continue_on_error

    async def run(self, run: "Run", resume: Resume) -> Any:
        args = self.args(run.env)
        results, errors = {}, []
        for entity_id in self.entity_ids:
            try:
                results[entity_id] = await run.call(entity_id, self.command, args)
            except CommandError as exc:
                if not self.continue_on_error:
                    raise
                errors.append(f"{entity_id}: {exc.message}")
        return {"entities": self.entity_ids, "args": args, **({"errors": errors} if errors else {})}


class Delay(Step):
    kind = "delay"

    def __init__(self, pos: Pos, seconds: float | None, template: Callable[[dict], Any] | None) -> None:
        super().__init__(pos)
        self.seconds = seconds
        self.template = template

    async def run(self, run: "Run", resume: Resume) -> Any:
        if resume is not None and run.resume_due is not None:
            due = run.resume_due  # resumed after a restart: wait only what was left
            run.resume_due = None
        else:
            seconds = self.seconds if self.template is None else parse_duration(self.template(run.env))
            due = run.now() + seconds
        run.pause(self.pos, due)
        try:
            await run.scheduler.sleep_until(due)
        finally:
            run.unpause()
        return {"until": due}


class WaitFor(Step):
    kind = "wait_for"

    def __init__(self, pos: Pos, triggers: list, timeout: float | None, continue_on_timeout: bool) -> None:
        super().__init__(pos)
        self.triggers = triggers
        self.timeout = timeout
        self.continue_on_timeout = continue_on_timeout

    async def run(self, run: "Run", resume: Resume) -> Any:
        fired = asyncio.get_running_loop().create_future()

        def fire(variables: dict) -> None:
            if not fired.done():
                fired.set_result(variables)

        detach = run.engine.attach_temporary(self.triggers, fire)
        timer = None
        if self.timeout is not None:
            timer = run.scheduler.call_later(self.timeout, lambda: fired.done() or fired.set_result(None))
        try:
            variables = await fired
        finally:
            detach()
            if timer is not None:
                timer.cancel()
        run.env["wait"] = {"trigger": variables, "timed_out": variables is None}
        if variables is None and not self.continue_on_timeout:
            raise StopRun("wait_for timed out")
        return {"timed_out": variables is None}


class WaitTemplate(Step):
    kind = "wait_template"

    def __init__(self, pos: Pos, condition: Condition, timeout: float | None, continue_on_timeout: bool) -> None:
        super().__init__(pos)
        self.condition = condition
        self.timeout = timeout
        self.continue_on_timeout = continue_on_timeout

    async def run(self, run: "Run", resume: Resume) -> Any:
        started = run.now()
        checks: list = []  # the condition's own trace entries: only the outcome goes in the run's
        if self.condition.check(run.env, checks):
            run.env["wait"] = {"completed": True, "remaining": self.timeout}
            return {"completed": True}
        done = asyncio.get_running_loop().create_future()

        def recheck(event: StateChanged) -> None:
            if done.done():
                return
            checks.clear()
            try:
                if self.condition.check(run.env, checks):
                    done.set_result(True)
            except Exception as exc:  # noqa: BLE001 - ends the wait with the error, not the bus
                done.set_exception(ActionFailed(f"wait_template: {exc}"))

        unsubscribe = run.engine.hub.bus.subscribe(StateChanged, recheck)
        timer = None
        if self.timeout is not None:
            timer = run.scheduler.call_later(self.timeout, lambda: done.done() or done.set_result(False))
        try:
            completed = await done
        finally:
            unsubscribe()
            if timer is not None:
                timer.cancel()
        remaining = None if self.timeout is None else max(0.0, self.timeout - (run.now() - started))
        run.env["wait"] = {"completed": completed, "remaining": remaining}
        if not completed and not self.continue_on_timeout:
            raise StopRun("wait_template timed out")
        return {"completed": completed}


class Parallel(Step):
    """HA's ``parallel``: the branches run at once and the step ends when all have. A failing branch
    does not stop the others; the step then fails with every branch's error. A run paused in a
    branch is not saved for a restart (one run has one saved place, and a parallel run has several)."""

    kind = "parallel"

    def __init__(self, pos: Pos, branches: list[Step]) -> None:
        super().__init__(pos)
        self.branches = branches

    async def run(self, run: "Run", resume: Resume) -> Any:
        run.unsaved += 1
        try:
            outcomes = await asyncio.gather(*(b.execute(run, None) for b in self.branches), return_exceptions=True)
        finally:
            run.unsaved -= 1
        for outcome in outcomes:
            if isinstance(outcome, (StopRun, asyncio.CancelledError)):
                raise outcome
        errors = [(b, o) for b, o in zip(self.branches, outcomes) if isinstance(o, BaseException)]
        failed = [(b, o) for b, o in errors if not getattr(b, "continue_on_error", False)]
        for _, outcome in errors:
            if not isinstance(outcome, ActionFailed):
                raise outcome  # a bug, reported by the run as such
        if failed:
            raise ActionFailed("; ".join(str(o) for _, o in failed))
        return {"branches": len(self.branches), **({"errors": [str(o) for _, o in errors]} if errors else {})}


class Choose(Step):
    kind = "choose"

    def __init__(self, pos: Pos, options: list[tuple[list[Condition], list[Step]]], default: list[Step]) -> None:
        super().__init__(pos)
        self.options = options
        self.default = default

    async def run(self, run: "Run", resume: Resume) -> Any:
        if resume:  # ["choose", branch, ...]
            branch, rest = resume[1], resume[2:]
        else:
            branch, rest = -1, None
            for i, (conditions, _) in enumerate(self.options):
                if all(c.check(run.env, run.trace.conditions) for c in conditions):
                    branch = i
                    break
        steps = self.default if branch == -1 else self.options[branch][1]
        await run_sequence(steps, run, rest)
        return {"choice": "default" if branch == -1 else branch}


class Repeat(Step):
    """A loop, stopped at ``max_iterations``: a ``while`` that never turns false (or a count of a
    billion) would otherwise keep the hub busy forever. A rule that means it raises the limit."""

    kind = "repeat"

    def __init__(self, pos: Pos, count: Callable[[dict], Any] | None, while_: list[Condition] | None,
                 until: list[Condition] | None, steps: list[Step], max_iterations: int,
                 for_each: Callable[[dict], Any] | None = None) -> None:
        super().__init__(pos)
        self.count = count
        self.for_each = for_each
        self.while_ = while_
        self.until = until
        self.steps = steps
        self.max_iterations = max_iterations

    def _total(self, run: "Run") -> int | None:
        if self.count is None:
            return None
        raw = self.count(run.env)
        try:
            total = int(raw)
        except (TypeError, ValueError, OverflowError):
            raise ActionFailed(f"count must be a whole number, got {raw!r}") from None
        if total > self.max_iterations:
            raise ActionFailed(f"count {total} is above this repeat's limit of {self.max_iterations} "
                               f"iterations; raise it with max_iterations")
        return total

    def _items(self, run: "Run") -> list | None:
        if self.for_each is None:
            return None
        items = self.for_each(run.env)
        if isinstance(items, (str, bytes)) or not isinstance(items, (list, tuple)):
            raise ActionFailed(f"for_each must be a list, got {items!r}"[:300])
        if len(items) > self.max_iterations:
            raise ActionFailed(f"for_each has {len(items)} items, above this repeat's limit of "
                               f"{self.max_iterations} iterations; raise it with max_iterations")
        return list(items)

    async def run(self, run: "Run", resume: Resume) -> Any:
        index, rest = (resume[1], resume[2:]) if resume else (1, None)
        items = self._items(run)
        total = len(items) if items is not None else self._total(run)
        outer = run.env.get("repeat")
        try:
            while True:
                if total is not None and index > total:
                    break
                run.env["repeat"] = {"index": index, "first": index == 1, "last": total is not None and index == total}
                if items is not None:
                    run.env["repeat"]["item"] = items[index - 1]
                if self.while_ is not None and rest is None and not all(c.check(run.env, run.trace.conditions) for c in self.while_):
                    break
                if index > self.max_iterations:  # a loop that ends by itself right at the limit is fine
                    raise ActionFailed(f"stopped at the limit of {self.max_iterations} iterations; "
                                       f"raise it with max_iterations on this repeat")
                run.iteration[self.pos] = index
                await run_sequence(self.steps, run, rest)
                rest = None
                if self.until is not None and all(c.check(run.env, run.trace.conditions) for c in self.until):
                    break
                index += 1
                await asyncio.sleep(0)  # a tight loop must not starve the hub
        finally:
            run.iteration.pop(self.pos, None)
            if outer is None:
                run.env.pop("repeat", None)
            else:
                run.env["repeat"] = outer
        return {"iterations": index if total is None else min(index, total)}


class Stop(Step):
    kind = "stop"

    def __init__(self, pos: Pos, reason: str, error: bool, response_variable: str | None = None) -> None:
        super().__init__(pos)
        self.reason = reason
        self.error = error
        self.response_variable = response_variable

    async def run(self, run: "Run", resume: Resume) -> Any:
        response = None
        if self.response_variable is not None:
            if self.response_variable not in run.env:
                raise ActionFailed(f"response_variable {self.response_variable!r} is not set")
            response = run.env[self.response_variable]
            if not isinstance(response, dict):  # as in HA: a response is a mapping
                raise ActionFailed(f"response_variable {self.response_variable!r} must hold a mapping, "
                                   f"got {type(response).__name__}")
        raise StopRun(self.reason, self.error, response)


class FireEvent(Step):
    kind = "event"

    def __init__(self, pos: Pos, name: str, data: Callable[[dict], Any]) -> None:
        super().__init__(pos)
        self.name = name
        self.data = data

    async def run(self, run: "Run", resume: Resume) -> Any:
        data = self.data(run.env)
        run.engine.hub.bus.publish(CustomEvent(run.now(), self.name, data))
        return {"event": self.name, "data": data}


class Log(Step):
    kind = "log"

    def __init__(self, pos: Pos, message: Callable[[dict], Any], level: str) -> None:
        super().__init__(pos)
        self.message = message
        self.level = getattr(logging, level.upper())

    async def run(self, run: "Run", resume: Resume) -> Any:
        text = str(self.message(run.env))
        logging.getLogger(f"hub.rules.{run.rule.id}").log(self.level, "%s", text)
        return {"message": text}


class CheckCondition(Step):
    """A condition in the middle of a sequence: false stops the run quietly, as in Home Assistant."""

    kind = "condition"

    def __init__(self, pos: Pos, condition: Condition) -> None:
        super().__init__(pos)
        self.condition = condition

    async def run(self, run: "Run", resume: Resume) -> Any:
        if not self.condition.check(run.env, run.trace.conditions):
            raise StopRun("condition is false")
        return {"result": True}


class PluginAction(Step):
    def __init__(self, pos: Pos, kind: str, plugin: str, config: Any, runner: Callable[..., Any]) -> None:
        super().__init__(pos)
        self.kind = kind
        self.plugin = plugin
        self.config = config
        self.runner = runner

    async def run(self, run: "Run", resume: Resume) -> Any:
        try:
            result = self.runner(self.config, run.env)
            if asyncio.iscoroutine(result) or isinstance(result, asyncio.Future):
                result = await result
        except StopRun:
            raise
        except BaseException as exc:  # noqa: BLE001 - plugin code, sys.exit() too: contain it in this run
            if is_hub_cancellation(exc):
                raise
            raise ActionFailed(f"plugin {self.plugin}: {type(exc).__name__}: {exc}") from exc
        return result

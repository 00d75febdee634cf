"""Conditions compiled to small objects with a ``check(env, trace)`` method.

Compiled once when a rule loads, so a check on the hot path is a few attribute reads; each check
appends its verdict (or the error that made it false) to the run's trace.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, time as dtime, timedelta
from typing import Any

from hub.rules.context import RuleContext
from hub.rules.expressions import ExpressionError
from hub.rules.templates import compile_condition, compile_template
from hub.rules.model import (
    ExpressionCondition,
    LogicCondition,
    NumericStateCondition,
    StateCondition,
    SunCondition,
    TimeCondition,
    TriggerIdCondition,
    entity_list,
)
from hub.rules import sun

Trace = list[dict[str, Any]]
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def parse_clock(value: str) -> dtime:
    try:
        return dtime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"time {value!r} is not HH:MM or HH:MM:SS") from None


def numeric(value: Any) -> float | None:
    """A state as a number, or None when it is not one (``unavailable``, ``on``): such a state is
    never above or below anything, as in Home Assistant."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def in_range(value: float | None, above: float | None, below: float | None) -> bool:
    if value is None:
        return False
    return (above is None or value > above) and (below is None or value < below)


class NumericReader:
    """What ``numeric_state`` compares, shared by the trigger and the condition: the state, an
    attribute, or HA's ``value_template`` (with ``state`` as HA's state object), against bounds
    that are numbers or other entities' states."""

    def __init__(self, ctx: RuleContext, attribute: str | None, value_template: str | None,
                 above: float | str | None, below: float | str | None) -> None:
        self.states = ctx.hub.states
        self.attribute = attribute
        self.template = compile_template(value_template, ctx.functions) if value_template else None
        self.above, self.below = above, below
        self.fixed = not isinstance(above, str) and not isinstance(below, str)

    def value(self, state: Any) -> float | None:
        if state is None or not state.available:
            return None
        if self.template is not None:
            view = {"entity_id": state.entity_id, "state": state.state, "attributes": dict(state.attributes)}
            try:
                return numeric(self.template.render({"state": view}))
            except ExpressionError:
                return None  # as in HA: a template that fails is not a number
        return numeric(state.attributes.get(self.attribute) if self.attribute else state.value)

    def _bound(self, bound: float | str | None) -> float | None | bool:
        if not isinstance(bound, str):
            return bound
        state = self.states.get(bound)
        value = numeric(state.value) if state is not None and state.available else None
        return False if value is None else value  # False: the bound entity has no number now

    def in_range(self, state: Any) -> bool:
        value = self.value(state)
        if self.fixed:
            return in_range(value, self.above, self.below)  # type: ignore[arg-type]
        above, below = self._bound(self.above), self._bound(self.below)
        if above is False or below is False:
            return False
        return in_range(value, above, below)  # type: ignore[arg-type]


class Condition:
    kind = "condition"

    def __init__(self, path: str) -> None:
        self.path = path

    def test(self, env: dict) -> bool:
        raise NotImplementedError

    def check(self, env: dict, trace: Trace | None) -> bool:
        try:
            result = bool(self.test(env))
            error = None
        except (ExpressionError, TypeError, ValueError) as exc:
            result, error = False, str(exc)
        if trace is not None:
            entry: dict[str, Any] = {"path": self.path, "condition": self.kind, "result": result}
            if error:
                entry["error"] = error
            trace.append(entry)
        return result


class StateCheck(Condition):
    kind = "state"

    def __init__(self, path: str, cfg: StateCondition, ctx: RuleContext) -> None:
        super().__init__(path)
        self.entities = entity_list(cfg.entity_id)
        self.wanted = cfg.state if isinstance(cfg.state, list) else [cfg.state]
        self.attribute = cfg.attribute
        self.for_ = cfg.for_
        self.ctx = ctx

    def test(self, env: dict) -> bool:
        states = self.ctx.hub.states
        for entity_id in self.entities:
            state = states.get(entity_id)
            if state is None:
                return False
            value = state.attributes.get(self.attribute) if self.attribute else state.state
            if value not in self.wanted:
                return False
            if self.for_ and self.ctx.hub.now() - state.last_changed < self.for_:
                return False
        return True


class NumericCheck(Condition):
    kind = "numeric_state"

    def __init__(self, path: str, cfg: NumericStateCondition, ctx: RuleContext) -> None:
        super().__init__(path)
        self.entities = entity_list(cfg.entity_id)
        self.cfg = cfg
        self.ctx = ctx
        self.reader = NumericReader(ctx, cfg.attribute, cfg.value_template, cfg.above, cfg.below)

    def test(self, env: dict) -> bool:
        for entity_id in self.entities:
            if not self.reader.in_range(self.ctx.hub.states.get(entity_id)):
                return False
        return True


class TimeCheck(Condition):
    kind = "time"

    def __init__(self, path: str, cfg: TimeCondition, ctx: RuleContext) -> None:
        super().__init__(path)
        self.after = parse_clock(cfg.after) if cfg.after else None
        self.before = parse_clock(cfg.before) if cfg.before else None
        days = cfg.weekday if isinstance(cfg.weekday, list) else [cfg.weekday] if cfg.weekday else []
        self.weekdays = {WEEKDAYS.index(d) for d in days}
        self.ctx = ctx

    def test(self, env: dict) -> bool:
        now = self.ctx.local_now()
        if self.weekdays and now.weekday() not in self.weekdays:
            return False
        t = now.time().replace(tzinfo=None)
        after, before = self.after, self.before
        if after is not None and before is not None and after > before:
            return t >= after or t < before  # a window across midnight: 22:00 to 06:00
        return (after is None or t >= after) and (before is None or t < before)


class SunCheck(Condition):
    kind = "sun"

    def __init__(self, path: str, cfg: SunCondition, ctx: RuleContext) -> None:
        super().__init__(path)
        core = ctx.hub.core
        if core.latitude is None or core.longitude is None:
            raise ValueError("sun conditions need hub.latitude and hub.longitude in configuration.yaml")
        self.cfg = cfg
        self.ctx = ctx
        self.lat, self.lon = core.latitude, core.longitude

    def _event(self, name: str, day) -> datetime | None:
        return (sun.sunrise if name == "sunrise" else sun.sunset)(day, self.lat, self.lon)

    def test(self, env: dict) -> bool:
        now = datetime.fromtimestamp(self.ctx.hub.now()).astimezone()
        day = now.astimezone(self.ctx.tz).date() if self.ctx.tz else now.date()
        ok = True
        if self.cfg.after:
            event = self._event(self.cfg.after, day)
            ok = ok and event is not None and now >= event + timedelta(seconds=self.cfg.after_offset)
        if self.cfg.before:
            event = self._event(self.cfg.before, day)
            before_ok = event is not None and now < event + timedelta(seconds=self.cfg.before_offset)
            # "after sunset, before sunrise" means the night: either side of midnight.
            if self.cfg.after == "sunset" and self.cfg.before == "sunrise":
                return ok or before_ok
            ok = ok and before_ok
        return ok


class Logic(Condition):
    def __init__(self, path: str, kind: str, parts: list[Condition]) -> None:
        super().__init__(path)
        self.kind = kind
        self.parts = parts

    def check(self, env: dict, trace: Trace | None) -> bool:
        if self.kind == "and":
            result = all(p.check(env, trace) for p in self.parts)
        elif self.kind == "or":
            result = any(p.check(env, trace) for p in self.parts)
        else:
            result = not any(p.check(env, trace) for p in self.parts)
        if trace is not None:
            trace.append({"path": self.path, "condition": self.kind, "result": result})
        return result


class ExpressionCheck(Condition):
    kind = "expression"

    def __init__(self, path: str, text: str, ctx: RuleContext) -> None:
        super().__init__(path)
        self.expression = compile_condition(text, ctx.functions)  # own evaluator, else Jinja

    def test(self, env: dict) -> bool:
        return self.expression.evaluate(env)


Compiler = Callable[[str, Any, RuleContext], Condition]

class TriggerIdCheck(Condition):
    """True when the run was started by a trigger with one of these ids (``trigger.id``: the
    trigger's ``id:``, else its index, compared as text as Home Assistant does)."""

    kind = "trigger"

    def __init__(self, path: str, cfg: TriggerIdCondition, ctx: RuleContext) -> None:
        super().__init__(path)
        self.ids = {str(i) for i in (cfg.id if isinstance(cfg.id, list) else [cfg.id])}

    def test(self, env: dict) -> bool:
        trigger = env.get("trigger") or {}
        return str(trigger.get("id")) in self.ids


SIMPLE: dict[type, Callable[[str, Any, RuleContext], Condition]] = {
    TriggerIdCondition: TriggerIdCheck,
    StateCondition: StateCheck,
    NumericStateCondition: NumericCheck,
    TimeCondition: TimeCheck,
    SunCondition: SunCheck,
    ExpressionCondition: lambda path, cfg, ctx: ExpressionCheck(path, cfg.expression, ctx),
}

__all__ = ["Condition", "ExpressionCheck", "Logic", "SIMPLE", "LogicCondition", "in_range", "numeric", "parse_clock"]

"""Trigger watchers: each arms one trigger of one rule and calls ``fire(variables)``.

State-based watchers do not subscribe to the bus themselves: the engine keeps an index from entity
id to watchers and makes one lookup per state change, so a change costs only the watchers of that
entity however many rules exist. Watchers with ``for:`` keep a timer per entity; the engine saves
those timers so that, after a restart, one that was 8 minutes into 10 fires 2 minutes later.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, time as dtime, timedelta
from typing import TYPE_CHECKING, Any

from hub.core.events import CustomEvent, StateChanged
from hub.core.state import State
from hub.rules import sun
from hub.rules.conditions import NumericReader, parse_clock
from hub.rules.templates import compile_condition
from hub.rules.model import (
    AvailabilityTrigger,
    EventTrigger,
    HomeAssistantTrigger,
    NumericStateTrigger,
    StateTrigger,
    SunTrigger,
    TemplateTrigger,
    TimePatternTrigger,
    TimeTrigger,
    WebhookTrigger,
    entity_list,
)

if TYPE_CHECKING:
    from hub.rules.engine import RuleEngine

Fire = Callable[[dict], None]


class Watch:
    """One armed trigger. ``key`` identifies it across restarts (rule id and trigger index)."""

    kind = "trigger"

    def __init__(self, engine: "RuleEngine", key: str, trigger_id: str, fire: Fire) -> None:
        self.engine = engine
        self.key = key
        self.trigger_id = trigger_id
        self.fire = fire

    def variables(self, **extra: Any) -> dict:
        return {"id": self.trigger_id, "platform": self.kind, **extra}

    def attach(self) -> None:
        pass

    def detach(self) -> None:
        pass


def _matches(wanted: Any, value: Any) -> bool:
    if isinstance(wanted, list):
        return value in wanted
    return value == wanted


class _ForTimers(Watch):
    """Shared by the watchers that support ``for:``: a timer per entity, saved by the engine."""

    for_: float | None = None
    entities: list[str]

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.timers: dict[str, tuple[Any, Any, dict]] = {}  # entity -> (timer, held value, variables)

    def arm(self, entity_id: str, held: Any, variables: dict, due: float | None = None) -> None:
        self.disarm(entity_id)
        due = self.engine.hub.now() + self.for_ if due is None else due
        timer = self.engine.scheduler.call_at(due, self._elapsed, entity_id)
        self.timers[entity_id] = (timer, held, variables)
        self.engine.pending_put(f"{self.key}|{entity_id}", {"due": due, "held": held, "variables": variables})

    def disarm(self, entity_id: str) -> None:
        entry = self.timers.pop(entity_id, None)
        if entry is not None:
            entry[0].cancel()
            self.engine.pending_drop(f"{self.key}|{entity_id}")

    def _elapsed(self, entity_id: str) -> None:
        _, held, variables = self.timers.pop(entity_id)
        self.engine.pending_drop(f"{self.key}|{entity_id}")
        if self.still_holds(entity_id, held):
            self.fire({**variables, "for": self.for_})

    def still_holds(self, entity_id: str, held: Any) -> bool:
        raise NotImplementedError

    def restore(self, entity_id: str, due: float, held: Any, variables: dict) -> None:
        """A timer saved before a restart: re-armed for its original due time if the state it was
        waiting on still holds (a restored state is unavailable until its driver confirms it, so the
        value is compared, and the timer is dropped if the driver then reports something else)."""
        state = self.engine.hub.states.get(entity_id)
        if state is not None and state.value == held or self.still_holds(entity_id, held):
            self.arm(entity_id, held, variables, due)

    def attach(self) -> None:
        for entity_id in self.entities:
            self.engine.watch_entity(entity_id, self)

    def detach(self) -> None:
        for entity_id in self.entities:
            self.engine.unwatch_entity(entity_id, self)
        for entity_id in list(self.timers):
            entry = self.timers.pop(entity_id)
            entry[0].cancel()  # detaching on stop keeps the saved timer for the next start


class StateWatch(_ForTimers):
    kind = "state"

    def __init__(self, engine, key, trigger_id, fire, cfg: StateTrigger) -> None:
        super().__init__(engine, key, trigger_id, fire)
        self.entities = entity_list(cfg.entity_id)
        given = cfg.model_fields_set
        self.from_ = cfg.from_ if "from_" in given else _ANY
        self.to = cfg.to if "to" in given else _ANY
        self.not_from = cfg.not_from if "not_from" in given else _NONE
        self.not_to = cfg.not_to if "not_to" in given else _NONE
        self.attribute = cfg.attribute
        self.for_ = cfg.for_

    def _read(self, state: State | None) -> Any:
        if state is None:
            return None
        return state.attributes.get(self.attribute) if self.attribute else state.state

    def on_state(self, event: StateChanged) -> None:
        old, new = self._read(event.old_state), self._read(event.new_state)
        if old == new:
            if self.for_ and event.entity_id in self.timers and not self._to_ok(new):
                self.disarm(event.entity_id)
            return  # only attributes changed (or another attribute than the watched one)
        matched = (
            (self.from_ is _ANY or _matches(self.from_, old))
            and self._to_ok(new)
            and (self.not_from is _NONE or not _matches(self.not_from, old))
        )
        if not self.for_:
            if matched:
                self.fire(self.variables(entity_id=event.entity_id, from_state=event.old_state,
                                         to_state=event.new_state, description=f"state of {event.entity_id}"))
            return
        pending = self.timers.get(event.entity_id)
        if matched:
            if pending is not None and pending[1] == new:
                return  # same value again (e.g. the driver confirming it after a restart): keep counting
            self.arm(event.entity_id, new, self.variables(
                entity_id=event.entity_id, from_state=event.old_state, to_state=event.new_state,
                description=f"state of {event.entity_id} for {self.for_:g} s"))
        elif pending is not None:
            self.disarm(event.entity_id)

    def _to_ok(self, value: Any) -> bool:
        return (self.to is _ANY or _matches(self.to, value)) and (self.not_to is _NONE or not _matches(self.not_to, value))

    def still_holds(self, entity_id: str, held: Any) -> bool:
        return self._read(self.engine.hub.states.get(entity_id)) == held


class NumericWatch(_ForTimers):
    kind = "numeric_state"

    def __init__(self, engine, key, trigger_id, fire, cfg: NumericStateTrigger) -> None:
        super().__init__(engine, key, trigger_id, fire)
        self.entities = entity_list(cfg.entity_id)
        self.reader = NumericReader(engine.rules_ctx, cfg.attribute, cfg.value_template, cfg.above, cfg.below)
        self.above, self.below = cfg.above, cfg.below
        self.for_ = cfg.for_

    def on_state(self, event: StateChanged) -> None:
        now_in = self.reader.in_range(event.new_state)
        if not now_in:
            if self.for_ and event.entity_id in self.timers:
                self.disarm(event.entity_id)
            return
        if event.old_state is not None and self.reader.in_range(event.old_state):
            return  # it was already in range: crossing into it is what fires
        variables = self.variables(entity_id=event.entity_id, from_state=event.old_state, to_state=event.new_state,
                                   above=self.above, below=self.below,
                                   description=f"numeric state of {event.entity_id}")
        if self.for_:
            if event.entity_id not in self.timers:
                self.arm(event.entity_id, True, variables)
        else:
            self.fire(variables)

    def still_holds(self, entity_id: str, held: Any) -> bool:
        return self.reader.in_range(self.engine.hub.states.get(entity_id))

    def restore(self, entity_id: str, due: float, held: Any, variables: dict) -> None:
        if self.reader.in_range(self.engine.hub.states.get(entity_id)):
            self.arm(entity_id, held, variables, due)


class AvailabilityWatch(_ForTimers):
    def __init__(self, engine, key, trigger_id, fire, cfg: AvailabilityTrigger) -> None:
        super().__init__(engine, key, trigger_id, fire)
        self.kind = cfg.trigger
        self.wanted = cfg.trigger == "device_available"
        if cfg.device_id is not None:
            self.entities = [e.entity_id for e in engine.hub.entities.for_device(cfg.device_id)]
        else:
            self.entities = entity_list(cfg.entity_id)
        self.for_ = cfg.for_

    def on_state(self, event: StateChanged) -> None:
        old = event.old_state.available if event.old_state is not None else None
        new = event.new_state.available
        if old == new:
            return
        if new != self.wanted:
            if event.entity_id in self.timers:
                self.disarm(event.entity_id)
            return
        variables = self.variables(entity_id=event.entity_id, from_state=event.old_state, to_state=event.new_state,
                                   description=f"{event.entity_id} became {'available' if new else 'unavailable'}")
        if self.for_:
            self.arm(event.entity_id, new, variables)
        else:
            self.fire(variables)

    def still_holds(self, entity_id: str, held: Any) -> bool:
        state = self.engine.hub.states.get(entity_id)
        return state is not None and state.available == held

    def restore(self, entity_id: str, due: float, held: Any, variables: dict) -> None:
        if held is False:  # restored states are unavailable anyway: only their driver can tell
            self.arm(entity_id, held, variables, due)


class TimeWatch(Watch):
    """``at: "07:30"``, or ``at: sensor.alarm``: a timestamp sensor (unix seconds), or an entity whose
    state is a time of day or an ISO date-time."""

    kind = "time"

    def __init__(self, engine, key, trigger_id, fire, cfg: TimeTrigger) -> None:
        super().__init__(engine, key, trigger_id, fire)
        ats = cfg.at if isinstance(cfg.at, list) else [cfg.at]
        self.clocks = [parse_clock(a) for a in ats if "." not in a]
        self.entities = [a for a in ats if "." in a]
        self.timers: dict[Any, Any] = {}

    def attach(self) -> None:
        for clock in self.clocks:
            self._schedule(clock, clock)
        for entity_id in self.entities:
            self.engine.watch_entity(entity_id, self)
            self._schedule_entity(entity_id)

    def detach(self) -> None:
        for entity_id in self.entities:
            self.engine.unwatch_entity(entity_id, self)
        for timer in self.timers.values():
            timer.cancel()
        self.timers.clear()

    def _next(self, clock: dtime) -> float:
        now = self.engine.rules_ctx.local_now()
        candidate = now.replace(hour=clock.hour, minute=clock.minute, second=clock.second, microsecond=0)
        if candidate <= now:
            candidate = (candidate + timedelta(days=1)).replace(hour=clock.hour, minute=clock.minute, second=clock.second)
        return candidate.timestamp()

    def _schedule(self, key: Any, clock: dtime) -> None:
        self.timers[key] = self.engine.scheduler.call_at(self._next(clock), self._ring, key, clock)

    def _ring(self, key: Any, clock: dtime) -> None:
        self.fire(self.variables(now=self.engine.rules_ctx.local_now().isoformat(), description=f"time {clock}"))
        if isinstance(key, dtime):
            self._schedule(key, clock)
        else:
            self._schedule_entity(key)

    def _schedule_entity(self, entity_id: str) -> None:
        old = self.timers.pop(entity_id, None)
        if old is not None:
            old.cancel()
        value = self.engine.rules_ctx.state_value(entity_id)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            at = float(value)  # a timestamp sensor: unix seconds
        elif isinstance(value, str):
            try:
                when = datetime.fromisoformat(value)
            except ValueError:
                return
            if when.tzinfo is None:
                when = when.replace(tzinfo=self.engine.rules_ctx.tz) if self.engine.rules_ctx.tz else when.astimezone()
            at = when.timestamp()
        else:
            return
        if at > self.engine.hub.now():
            self.timers[entity_id] = self.engine.scheduler.call_at(at, self._ring_entity, entity_id)

    def _ring_entity(self, entity_id: str) -> None:
        self.timers.pop(entity_id, None)
        self.fire(self.variables(entity_id=entity_id, description=f"time in {entity_id}"))

    def on_state(self, event: StateChanged) -> None:
        value = event.new_state.state
        if isinstance(value, str) and ":" in value and "T" not in value and "-" not in value:  # "07:30"
            try:
                clock = parse_clock(value)
            except ValueError:
                return
            old = self.timers.pop(event.entity_id, None)
            if old is not None:
                old.cancel()
            self.timers[event.entity_id] = self.engine.scheduler.call_at(self._next(clock), self._ring, event.entity_id, clock)
        else:
            self._schedule_entity(event.entity_id)


class TemplateWatch(_ForTimers):
    """``trigger: template``: fires when the template turns true (not while it stays true), checked
    on every state change as in Home Assistant; an error counts as false. With ``for:``, it must stay
    true that long (the timer is saved like a state trigger's)."""

    kind = "template"
    _KEY = "template"

    def __init__(self, engine, key, trigger_id, fire, cfg: TemplateTrigger) -> None:
        super().__init__(engine, key, trigger_id, fire)
        self.expression = compile_condition(cfg.value_template, engine.rules_ctx.functions)
        self.for_ = cfg.for_
        self.entities = []
        self.last = False
        self._unsubscribe: Callable[[], None] | None = None

    def _true(self) -> bool:
        try:
            return bool(self.expression.evaluate({}))
        except Exception:  # noqa: BLE001 - a template that fails (a missing entity) is not true
            return False

    def attach(self) -> None:
        self.last = self._true()  # already true when armed: HA waits for it to turn false, then true
        self._unsubscribe = self.engine.hub.bus.subscribe(StateChanged, self._changed)

    def detach(self) -> None:
        unsubscribe, self._unsubscribe = self._unsubscribe, None
        if unsubscribe is not None:
            unsubscribe()
        super().detach()

    def _changed(self, event: StateChanged) -> None:
        was, self.last = self.last, self._true()
        if self.last and not was:
            variables = self.variables(entity_id=event.entity_id, from_state=event.old_state,
                                       to_state=event.new_state, description="template turned true")
            if self.for_:
                self.arm(self._KEY, True, variables)
            else:
                self.fire(variables)
        elif not self.last and self._KEY in self.timers:
            self.disarm(self._KEY)

    def still_holds(self, entity_id: str, held: Any) -> bool:
        return self._true()


class WebhookWatch(Watch):
    """``trigger: webhook``: ``POST /api/webhook/<webhook_id>`` (hub/api/webhook.py) fires it. As in
    Home Assistant the id is the secret, so the route asks for no token."""

    kind = "webhook"

    def __init__(self, engine, key, trigger_id, fire, cfg: WebhookTrigger) -> None:
        super().__init__(engine, key, trigger_id, fire)
        self.webhook_id = cfg.webhook_id
        self.allowed_methods = frozenset(cfg.allowed_methods)
        self.local_only = cfg.local_only

    def attach(self) -> None:
        self.engine.webhooks.setdefault(self.webhook_id, []).append(self)

    def detach(self) -> None:
        watches = [w for w in self.engine.webhooks.get(self.webhook_id, ()) if w is not self]
        if watches:
            self.engine.webhooks[self.webhook_id] = watches
        else:
            self.engine.webhooks.pop(self.webhook_id, None)

    def received(self, json: Any, data: dict, query: dict) -> None:
        self.fire(self.variables(webhook_id=self.webhook_id, json=json, data=data, query=query,
                                 description=f"webhook {self.webhook_id}"))


class SunWatch(Watch):
    """``trigger: sun``: the next sunrise or sunset (plus ``offset``) at the hub's latitude and
    longitude, scheduled one at a time so a changed clock or day length is followed."""

    kind = "sun"
    _SEARCH_DAYS = 400  # past a polar night or day, the sun crosses the horizon again within a year

    def __init__(self, engine, key, trigger_id, fire, cfg: SunTrigger) -> None:
        super().__init__(engine, key, trigger_id, fire)
        self.cfg = cfg
        self.timer: Any = None

    def attach(self) -> None:
        self._schedule()

    def detach(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None

    def _next(self) -> float | None:
        core = self.engine.hub.core
        event = sun.sunrise if self.cfg.event == "sunrise" else sun.sunset
        now = self.engine.hub.now()
        day = self.engine.rules_ctx.local_now().date() - timedelta(days=1)
        for _ in range(self._SEARCH_DAYS):
            at = event(day, core.latitude, core.longitude)
            if at is not None and at.timestamp() + self.cfg.offset > now:
                return at.timestamp() + self.cfg.offset
            day += timedelta(days=1)
        return None

    def _schedule(self) -> None:
        at = self._next()
        self.timer = None if at is None else self.engine.scheduler.call_at(at, self._ring)

    def _ring(self) -> None:
        self.timer = None
        self.fire(self.variables(event=self.cfg.event, offset=self.cfg.offset,
                                 description=f"{self.cfg.event} with offset {self.cfg.offset:g} s"))
        self._schedule()


def _pattern(value: int | str | None, limit: int, default_all: bool) -> list[int]:
    if value is None:
        return list(range(limit)) if default_all else [0]
    text = str(value).strip()
    if text == "*":
        return list(range(limit))
    if text.startswith("/"):
        step = int(text[1:])
        if step <= 0:
            raise ValueError(f"'/{step}' needs a positive step")
        return list(range(0, limit, step))
    number = int(text)
    if not 0 <= number < limit:
        raise ValueError(f"{number} is out of range 0..{limit - 1}")
    return [number]


class PatternWatch(Watch):
    """``time_pattern``: ``minutes: "/5"`` is every five minutes, on the minute."""

    kind = "time_pattern"

    def __init__(self, engine, key, trigger_id, fire, cfg: TimePatternTrigger) -> None:
        super().__init__(engine, key, trigger_id, fire)
        # As in Home Assistant: units below the largest given default to 0, above it to every.
        given = [cfg.hours is not None, cfg.minutes is not None, cfg.seconds is not None]
        largest = given.index(True) if any(given) else 2
        self.hours = _pattern(cfg.hours, 24, largest > 0)
        self.minutes = _pattern(cfg.minutes, 60, largest > 1)
        self.seconds = _pattern(cfg.seconds, 60, False)
        self.timer = None

    def _next(self) -> float:
        now = self.engine.rules_ctx.local_now().replace(microsecond=0) + timedelta(seconds=1)
        for day in range(2):
            base = (now + timedelta(days=day)).replace(hour=0, minute=0, second=0)
            for h in self.hours:
                for m in self.minutes:
                    for s in self.seconds:
                        candidate = base.replace(hour=h, minute=m, second=s)
                        if candidate >= now:
                            return candidate.timestamp()
        raise RuntimeError("time_pattern found no next time")  # cannot happen: every day has a match

    def attach(self) -> None:
        self.timer = self.engine.scheduler.call_at(self._next(), self._ring)

    def _ring(self) -> None:
        self.fire(self.variables(now=self.engine.rules_ctx.local_now().isoformat(), description="time pattern"))
        self.attach()

    def detach(self) -> None:
        if self.timer is not None:
            self.timer.cancel()


class EventWatch(Watch):
    kind = "event"

    def __init__(self, engine, key, trigger_id, fire, cfg: EventTrigger) -> None:
        super().__init__(engine, key, trigger_id, fire)
        self.types = cfg.event_type if isinstance(cfg.event_type, list) else [cfg.event_type]
        self.data = cfg.event_data
        self._unsubscribe: list = []

    def attach(self) -> None:
        self._unsubscribe = [self.engine.hub.bus.subscribe(t, self.on_event) for t in self.types]

    def detach(self) -> None:
        for unsubscribe in self._unsubscribe:
            unsubscribe()
        self._unsubscribe = []

    def on_event(self, event: Any) -> None:
        data = event.data()
        if any(data.get(k) != v for k, v in self.data.items()):
            return
        payload = {"event_type": event.event_type, "data": data}
        if isinstance(event, CustomEvent) and event.entity_id:
            payload["entity_id"] = event.entity_id
        self.fire(self.variables(event=payload, description=f"event {event.event_type}"))


class StartWatch(Watch):
    kind = "hub_start"

    def attach(self) -> None:
        self.engine.on_start.append(self._started)

    def detach(self) -> None:
        if self._started in self.engine.on_start:
            self.engine.on_start.remove(self._started)

    def _started(self) -> None:
        self.fire(self.variables(description="hub start"))


class HomeAssistantWatch(StartWatch):
    """``trigger: homeassistant``: ``event: start`` with the hub's start, ``event: shutdown`` when it
    stops (the engine fires those before it stops anything), with HA's ``trigger.event``."""

    kind = "homeassistant"

    def __init__(self, engine, key, trigger_id, fire, cfg: HomeAssistantTrigger) -> None:
        super().__init__(engine, key, trigger_id, fire)
        self.event = cfg.event

    def _hooks(self) -> list:
        return self.engine.on_start if self.event == "start" else self.engine.on_shutdown

    def attach(self) -> None:
        self._hooks().append(self._started)

    def detach(self) -> None:
        if self._started in self._hooks():
            self._hooks().remove(self._started)

    def _started(self) -> None:
        description = "Home Assistant starting" if self.event == "start" else "Home Assistant stopping"
        self.fire(self.variables(event=self.event, description=description))


class PluginWatch(Watch):
    def __init__(self, engine, key, trigger_id, fire, kind: str, config: Any, attach: Callable) -> None:
        super().__init__(engine, key, trigger_id, fire)
        self.kind = kind
        self.config = config
        self._attach = attach
        self._detach: Callable[[], None] | None = None

    def attach(self) -> None:
        self._detach = _plugin_call(self.kind, self._attach, self.config,
                                    lambda variables: self.fire(self.variables(**(variables or {}))))

    def detach(self) -> None:
        detach, self._detach = self._detach, None
        if callable(detach):
            _plugin_call(self.kind, detach)


def _plugin_call(kind: str, function: Callable, *args: Any) -> Any:
    """A plugin's sys.exit() while arming or disarming its trigger is that trigger's failure, which
    the engine logs against the rule, not the end of the hub."""
    try:
        return function(*args)
    except Exception:
        raise
    except BaseException as exc:  # noqa: BLE001 - plugin code
        raise RuntimeError(f"plugin trigger {kind!r} raised {type(exc).__name__}: {exc}") from exc


class _Sentinel:
    def __repr__(self) -> str:
        return "<any>"


_ANY = _Sentinel()
_NONE = _Sentinel()

BUILTIN_WATCHES: dict[type, type[Watch]] = {
    StateTrigger: StateWatch,
    NumericStateTrigger: NumericWatch,
    AvailabilityTrigger: AvailabilityWatch,
    TimeTrigger: TimeWatch,
    TimePatternTrigger: PatternWatch,
    EventTrigger: EventWatch,
    HomeAssistantTrigger: HomeAssistantWatch,
    SunTrigger: SunWatch,
    TemplateTrigger: TemplateWatch,
    WebhookTrigger: WebhookWatch,
}

__all__ = ["BUILTIN_WATCHES", "PluginWatch", "StartWatch", "Watch"]

"""Traces: what each run of a rule did, for ``hub rules trace ID`` and the API.

Home Assistant users debug automations from traces; the engine keeps the last runs of every rule:
what triggered it, each condition's verdict, each action's result and timing, and how it ended.

A run may take millions of steps (a long ``repeat``); a trace that kept them all grew the hub by
gigabytes a minute. It keeps the first and the last steps and counts what it dropped in between:
the start shows how the run went wrong, the end where it stands.
"""

from __future__ import annotations

import itertools
import json
from collections import deque
from typing import Any

from hub.core.state import State, iso

TRACES_PER_RULE = 20
#: Steps (and condition verdicts) a trace keeps from the start and from the end of a run.
HEAD = 50
TAIL = 50
#: A step's result is kept as it is up to this many characters of JSON, else as a shortened text.
MAX_RESULT_CHARS = 2000
_ids = itertools.count(1)


def plain(value: Any) -> Any:
    """Trigger variables hold State objects; traces and saved runs need JSON."""
    if isinstance(value, State):
        return {
            "entity_id": value.entity_id,
            "state": value.state,
            "value": value.value,
            "available": value.available,
            "attributes": dict(value.attributes),
            "last_changed": value.last_changed,
            "last_updated": value.last_updated,
        }
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return value


class Bounded:
    """A list that keeps its first ``head`` and last ``tail`` items and counts the ones between."""

    __slots__ = ("head", "tail", "dropped", "_head_max")

    def __init__(self, head: int = HEAD, tail: int = TAIL) -> None:
        self._head_max = head
        self.head: list = []
        self.tail: deque = deque(maxlen=tail)
        self.dropped = 0

    def append(self, item: Any) -> None:
        if len(self.head) < self._head_max:
            self.head.append(item)
            return
        if len(self.tail) == self.tail.maxlen:
            self.dropped += 1
        self.tail.append(item)

    def __len__(self) -> int:
        return len(self.head) + len(self.tail) + self.dropped

    def __iter__(self):
        return itertools.chain(self.head, self.tail)

    def __getitem__(self, index: int) -> Any:
        return list(self)[index]


def bounded_result(value: Any) -> Any:
    """A step's result as the trace keeps it: whole when small, else the start of its JSON, so one
    large event payload repeated in a loop cannot fill the hub's memory."""
    try:
        text = json.dumps(value, default=str, ensure_ascii=False)
    except (TypeError, ValueError):  # e.g. nested too deep
        text = repr(value)
    if len(text) <= MAX_RESULT_CHARS:
        return value
    return f"{text[:MAX_RESULT_CHARS]}... ({len(text)} characters, shortened)"


class Trace:
    __slots__ = ("run_id", "rule_id", "started", "finished", "trigger", "conditions", "steps", "outcome", "error")

    def __init__(self, rule_id: str, trigger: dict, started: float) -> None:
        self.run_id = next(_ids)
        self.rule_id = rule_id
        self.started = started
        self.finished: float | None = None
        self.trigger = trigger
        self.conditions = Bounded()
        self.steps = Bounded()
        self.outcome = "running"
        self.error: str | None = None

    def finish(self, outcome: str, now: float, error: str | None = None) -> None:
        self.outcome = outcome
        self.finished = now
        self.error = error

    def as_dict(self) -> dict[str, Any]:
        trigger = plain(self.trigger)
        return {
            "run_id": self.run_id,
            "rule_id": self.rule_id,
            "started": iso(self.started),
            "finished": iso(self.finished),
            "outcome": self.outcome,
            "error": self.error,
            "trigger": {k: v for k, v in trigger.items() if k != "description"},
            "trigger_description": trigger.get("description"),
            "conditions": list(self.conditions),
            "conditions_dropped": self.conditions.dropped,
            "steps": list(self.steps),
            # how many steps were not kept, and where in "steps" they would be
            "steps_dropped": self.steps.dropped,
            "steps_dropped_at": len(self.steps.head) if self.steps.dropped else None,
        }


class TraceLog:
    """The last runs per rule, newest last."""

    def __init__(self, per_rule: int = TRACES_PER_RULE) -> None:
        self.per_rule = per_rule
        self._by_rule: dict[str, deque[Trace]] = {}
        self.added = 0  # rule runs since start, skipped and condition-failed ones too (GET /api/metrics)

    def add(self, trace: Trace) -> None:
        self.added += 1
        bucket = self._by_rule.get(trace.rule_id)
        if bucket is None:
            bucket = self._by_rule[trace.rule_id] = deque(maxlen=self.per_rule)
        bucket.append(trace)

    def for_rule(self, rule_id: str) -> list[Trace]:
        return list(self._by_rule.get(rule_id, ()))

    def forget(self, rule_id: str) -> None:
        self._by_rule.pop(rule_id, None)

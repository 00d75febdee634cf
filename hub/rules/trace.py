"""Traces: what each run of a rule did, for ``hub rules trace ID`` and the API.

Home Assistant users debug automations from traces; the engine keeps the last runs of every rule:
what triggered it, each condition's verdict, each action's result and timing, and how it ended.
"""

from __future__ import annotations

import itertools
from collections import deque
from typing import Any

from hub.core.state import State, iso

TRACES_PER_RULE = 20
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


class Trace:
    __slots__ = ("run_id", "rule_id", "started", "finished", "trigger", "conditions", "steps", "outcome", "error")

    def __init__(self, rule_id: str, trigger: dict, started: float) -> None:
        self.run_id = next(_ids)
        self.rule_id = rule_id
        self.started = started
        self.finished: float | None = None
        self.trigger = trigger
        self.conditions: list[dict] = []
        self.steps: list[dict] = []
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
            "conditions": self.conditions,
            "steps": self.steps,
        }


class TraceLog:
    """The last runs per rule, newest last."""

    def __init__(self, per_rule: int = TRACES_PER_RULE) -> None:
        self.per_rule = per_rule
        self._by_rule: dict[str, deque[Trace]] = {}

    def add(self, trace: Trace) -> None:
        bucket = self._by_rule.get(trace.rule_id)
        if bucket is None:
            bucket = self._by_rule[trace.rule_id] = deque(maxlen=self.per_rule)
        bucket.append(trace)

    def for_rule(self, rule_id: str) -> list[Trace]:
        return list(self._by_rule.get(rule_id, ()))

    def forget(self, rule_id: str) -> None:
        self._by_rule.pop(rule_id, None)

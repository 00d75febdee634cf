"""Entity states and the state machine that owns them.

Semantics follow Home Assistant's, which users already know: ``last_changed`` moves only when the
value (or availability) changes, ``last_updated`` also when attributes change, and an identical write
fires nothing. Times are unix seconds as floats: building datetimes on the hot path would cost more
than the rest of a state write together; the API formats them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from hub.core.bus import EventBus

_EMPTY: MappingProxyType = MappingProxyType({})


def iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, timezone.utc).isoformat()


class State:
    """An immutable snapshot; a change makes a new one, so subscribers may keep old ones."""

    __slots__ = ("entity_id", "value", "attributes", "available", "last_changed", "last_updated")

    def __init__(
        self,
        entity_id: str,
        value: Any,
        attributes: MappingProxyType | dict = _EMPTY,
        available: bool = True,
        last_changed: float = 0.0,
        last_updated: float = 0.0,
    ) -> None:
        self.entity_id = entity_id
        self.value = value
        self.attributes = attributes if isinstance(attributes, MappingProxyType) else MappingProxyType(dict(attributes))
        self.available = available
        self.last_changed = last_changed
        self.last_updated = last_updated

    @property
    def state(self) -> Any:
        """The value as Home Assistant users read it: ``unavailable`` when the driver lost the device."""
        return self.value if self.available else "unavailable"

    def as_dict(self) -> dict[str, Any]:
        return {
            "entity_id": self.entity_id,
            "state": self.state,
            "value": self.value,
            "available": self.available,
            "attributes": dict(self.attributes),
            "last_changed": iso(self.last_changed),
            "last_updated": iso(self.last_updated),
        }

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, State)
            and self.entity_id == other.entity_id
            and self.value == other.value
            and self.available == other.available
            and self.attributes == other.attributes
            and self.last_changed == other.last_changed
            and self.last_updated == other.last_updated
        )

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        flag = "" if self.available else " unavailable"
        return f"<State {self.entity_id}={self.value!r}{flag} {dict(self.attributes)}>"


class StateMachine:
    def __init__(self, bus: "EventBus", now: Callable[[], float]) -> None:
        from hub.core.events import StateChanged  # events import State; keep the cycle one-way

        self._event = StateChanged
        self._bus = bus
        self._now = now
        self._states: dict[str, State] = {}
        self.writes = 0  # states changed since start (GET /api/metrics)

    def get(self, entity_id: str) -> State | None:
        return self._states.get(entity_id)

    def __iter__(self) -> Iterator[State]:
        return iter(list(self._states.values()))

    def __len__(self) -> int:
        return len(self._states)

    def __contains__(self, entity_id: str) -> bool:
        return entity_id in self._states

    def set(
        self,
        entity_id: str,
        value: Any,
        attributes: dict | None = None,
        *,
        available: bool = True,
    ) -> State:
        """Write a state; ``attributes=None`` keeps the current attributes.

        Returns the current state, which is the old object when nothing changed.
        """
        old = self._states.get(entity_id)
        if old is not None:
            same_value = old.value == value and old.available == available
            if attributes is None:
                attrs = old.attributes
                same_attrs = True
            else:
                same_attrs = attributes == old.attributes
                attrs = old.attributes if same_attrs else MappingProxyType(dict(attributes))
            if same_value and same_attrs:
                return old
            now = self._now()
            new = State(entity_id, value, attrs, available, old.last_changed if same_value else now, now)
        else:
            now = self._now()
            new = State(entity_id, value, _EMPTY if not attributes else MappingProxyType(dict(attributes)), available, now, now)
        self._states[entity_id] = new
        self.writes += 1
        self._bus.publish(self._event(now, entity_id, old, new))
        return new

    def set_available(self, entity_id: str, available: bool) -> State | None:
        old = self._states.get(entity_id)
        if old is None or old.available == available:
            return old
        return self.set(entity_id, old.value, None, available=available)

    def restore(self, state: State) -> None:
        """Put back a state read from the store at start-up, without an event: nothing changed."""
        self._states[state.entity_id] = state

    def remove(self, entity_id: str) -> None:
        self._states.pop(entity_id, None)

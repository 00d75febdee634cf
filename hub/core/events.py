"""Typed events on the bus.

Events are small slotted classes rather than dicts: the bus dispatches on the class, the hot path
(state writes) allocates one object, and a subscriber's type annotations say what it gets. Each class
has an ``event_type`` name, used by the API and the rule engine's ``event`` trigger.
"""

from __future__ import annotations

from typing import Any, ClassVar

from hub.core.state import State


class Event:
    __slots__ = ("time",)
    event_type: ClassVar[str] = "event"
    #: Set on events that concern one entity, so the bus can route them by entity.
    entity_id: str | None = None

    def __init__(self, time: float) -> None:
        self.time = time

    def data(self) -> dict[str, Any]:
        return {}

    def as_dict(self) -> dict[str, Any]:
        return {"event_type": self.event_type, "time": self.time, "data": self.data()}


class StateChanged(Event):
    """A state's value, attributes or availability changed (never fired for an identical write)."""

    __slots__ = ("entity_id", "old_state", "new_state")
    event_type = "state_changed"

    def __init__(self, time: float, entity_id: str, old_state: State | None, new_state: State) -> None:
        self.time = time
        self.entity_id = entity_id
        self.old_state = old_state
        self.new_state = new_state

    def data(self) -> dict[str, Any]:
        return {
            "entity_id": self.entity_id,
            "old_state": self.old_state.as_dict() if self.old_state else None,
            "new_state": self.new_state.as_dict(),
        }


class CommandCalled(Event):
    """A command went through the command registry: validated, dispatched, and its outcome."""

    __slots__ = ("entity_id", "command", "args", "source", "ok", "error", "result")
    event_type = "command_called"

    def __init__(self, time, entity_id, command, args, source, ok, error=None, result=None) -> None:
        self.time = time
        self.entity_id = entity_id
        self.command = command
        self.args = args
        self.source = source
        self.ok = ok
        self.error = error
        self.result = result  # what the driver answered: the command log keeps a summary of it

    def data(self) -> dict[str, Any]:
        return {
            "entity_id": self.entity_id,
            "command": self.command,
            "args": self.args,
            "source": self.source,
            "ok": self.ok,
            "error": self.error,
        }


class _EntityLifecycle(Event):
    __slots__ = ("entity_id", "device_id", "platform")

    def __init__(self, time, entity_id, device_id, platform) -> None:
        self.time = time
        self.entity_id = entity_id
        self.device_id = device_id
        self.platform = platform

    def data(self):
        return {"entity_id": self.entity_id, "device_id": self.device_id, "platform": self.platform}


class EntityRegistered(_EntityLifecycle):
    __slots__ = ()
    event_type = "entity_registered"


class EntityRemoved(_EntityLifecycle):
    """An entity left the hub (its driver removed the device): a bridge that announced it elsewhere
    (MQTT discovery) withdraws it."""

    __slots__ = ()
    event_type = "entity_removed"


class PluginStatusChanged(Event):
    """A plugin was set up, failed, crashed or was restarted: what ``hub plugins`` shows, live."""

    __slots__ = ("plugin", "status", "error")
    event_type = "plugin_status"

    def __init__(self, time, plugin, status, error=None) -> None:
        self.time = time
        self.plugin = plugin
        self.status = status
        self.error = error

    def data(self):
        return {"plugin": self.plugin, "status": self.status, "error": self.error}


class HubStarted(Event):
    __slots__ = ()
    event_type = "hub_start"


class HubStopping(Event):
    __slots__ = ()
    event_type = "hub_stop"


class CustomEvent(Event):
    """An event fired by a plugin, a rule or the API, named freely (``doorbell_pressed``)."""

    __slots__ = ("name", "payload", "entity_id")

    def __init__(self, time, name: str, payload: dict | None = None, entity_id: str | None = None) -> None:
        self.time = time
        self.name = name
        self.payload = payload or {}
        self.entity_id = entity_id

    @property
    def event_type(self) -> str:  # type: ignore[override]
        return self.name

    def data(self):
        return dict(self.payload)


BUILTIN_EVENTS: dict[str, type[Event]] = {
    cls.event_type: cls
    for cls in (StateChanged, CommandCalled, EntityRegistered, EntityRemoved, PluginStatusChanged, HubStarted,
                HubStopping)
}

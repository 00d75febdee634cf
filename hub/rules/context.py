"""What compiled rules see of the hub: states, the clock, the command gate, the functions of
expressions. One object, so the engine's parts can be tested against a small fake."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from hub.rules.expressions import DEFAULT_FUNCTIONS

if TYPE_CHECKING:
    from hub.runtime import Hub


@dataclass
class RuleContext:
    hub: "Hub"
    tz: tzinfo | None = None
    functions: dict[str, Any] = field(default_factory=dict)
    #: The scenes of scenes.yaml by id (hub.rules.scenes), loaded before the rules that name them.
    scenes: dict[str, Any] = field(default_factory=dict)
    #: Every script of scripts.yaml by id, loaded or refused (hub.rules.scripts), so a rule's
    #: ``action: script.x`` is checked at load.
    scripts: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def for_hub(cls, hub: "Hub") -> "RuleContext":
        tz = ZoneInfo(hub.core.time_zone) if hub.core.time_zone else None
        ctx = cls(hub, tz)
        ctx.functions = {**DEFAULT_FUNCTIONS, **ctx._entity_functions()}
        return ctx

    def local_now(self) -> datetime:
        """Aware local time: the hub's ``time_zone`` if configured, else the machine's."""
        return datetime.fromtimestamp(self.hub.now(), self.tz).astimezone(self.tz)

    def state_value(self, entity_id: str) -> Any:
        state = self.hub.states.get(entity_id)
        return None if state is None else state.state

    def _entity_functions(self) -> dict[str, Any]:
        states = self.hub.states

        def states_fn(entity_id: str) -> Any:
            return self.state_value(entity_id)

        def state_attr(entity_id: str, name: str) -> Any:
            state = states.get(entity_id)
            return None if state is None else state.attributes.get(name)

        def is_state(entity_id: str, value: Any) -> bool:
            current = self.state_value(entity_id)
            return current in value if isinstance(value, (list, tuple)) else current == value

        def is_state_attr(entity_id: str, name: str, value: Any) -> bool:
            return state_attr(entity_id, name) == value

        def has_value(entity_id: str) -> bool:
            state = states.get(entity_id)
            return state is not None and state.available and state.value is not None

        return {
            "states": states_fn,
            "state_attr": state_attr,
            "is_state": is_state,
            "is_state_attr": is_state_attr,
            "has_value": has_value,
            "now": self.local_now,
            "_state": states.get,  # whole states for Jinja's ``states.light.x`` (no '_' name is callable)
        }

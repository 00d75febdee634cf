"""Home Assistant's ``calendar`` trigger (docs/plugins/calendar.md).

```yaml
- trigger: calendar
  event: start              # or end
  entity_id: calendar.work
  offset: "-00:15:00"       # 15 minutes before each event starts
```

It fires once per occurrence (each of a recurring event's too) at its start or end plus the offset,
one timer at a time: the next such time after the last one fired (after arming, the first time),
aimed again whenever the file is read anew. As in Home Assistant, what fell due before the rule was
armed (before the hub started, during a restart) is not fired late, so nothing fires twice.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from hub.devices.model import slugify
from hub.rules.model import _signed_duration

from hub_calendar.calendars import TooManyOccurrences
from hub_calendar.config import CalendarConfig
from hub_calendar.entities import Calendars, calendar_paths


def calendar_ids(hub: Any) -> set[str]:
    """The calendars a rule may name. In a running hub, the plugin's own; when rules are checked
    without one (``hub rules check``, ``hub rules import``), the calendar entities the hub recorded
    and the files its next start will find."""
    calendars: Calendars | None = hub.data.get("calendars")
    if calendars is not None:
        return set(calendars.by_entity)
    found = {e.entity_id for e in hub.all_entities() if e.capability == "calendar"}
    config = hub.config if isinstance(hub.config, CalendarConfig) else CalendarConfig()
    return found | {f"calendar.{slugify(path.stem)}" for path, _ in calendar_paths(hub.config_dir, config)}


def _schema(hub: Any) -> type[BaseModel]:
    class CalendarTrigger(BaseModel):
        model_config = ConfigDict(extra="forbid")

        event: Literal["start", "end"] = "start"
        entity_id: str = Field(description="A calendar entity: calendar.<file name>.")
        offset: float = Field(0.0, description='"-00:15:00" is 15 minutes before; seconds work too.')

        _offset = field_validator("offset", mode="before")(classmethod(lambda cls, v: _signed_duration(v)))

        @field_validator("entity_id")
        @classmethod
        def _known(cls, value: str) -> str:
            ids = calendar_ids(hub)
            if value not in ids:
                known = ", ".join(sorted(ids)) or "none (no .ics file in calendars/)"
                raise ValueError(f"{value!r} is not a calendar; known: {known}")
            return value

    return CalendarTrigger


class CalendarWatch:
    def __init__(self, calendars: Calendars, config: Any, fire: Any) -> None:
        self.entity = calendars.by_entity[config.entity_id]
        self.config = config
        self.fire = fire
        self.hub = calendars.hub
        self.last = self.hub.now()  # what falls due after arming, not before
        self.timer: Any = None

    def arm(self) -> None:
        self.entity.listeners.append(self.aim)
        self.entity.update()  # a rule reload is also a look at the file: an edited one is read now
        self.aim()

    def aim(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        try:
            when, found = self.entity.file.next_edge(self.last, self.config.event, self.config.offset)
        except TooManyOccurrences:
            return  # the entity says so (unavailable, the plugin's note); aimed again when the file changes
        if when is not None:
            self.timer = self.hub.scheduler.call_at(when, self.ring, when, found)

    def ring(self, when: float, found: list) -> None:
        self.timer = None
        self.last = when
        tz = self.entity.file.tz
        for occ in found:
            self.fire({
                "event": self.config.event, "offset": self.config.offset, "entity_id": self.entity.entity_id,
                "calendar_event": occ.as_trigger(tz),
                "description": f"calendar {self.entity.entity_id} {self.config.event} of {occ.summary!r}",
            })
        self.aim()

    def disarm(self) -> None:
        if self.aim in self.entity.listeners:
            self.entity.listeners.remove(self.aim)
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None


def register_triggers(hub: Any, register: Any) -> None:
    def attach(config: Any, fire: Any) -> Any:
        calendars: Calendars | None = hub.data.get("calendars")
        if calendars is None or config.entity_id not in calendars.by_entity:
            raise RuntimeError(f"calendar {config.entity_id} is not there (the calendar plugin did not start)")
        watch = CalendarWatch(calendars, config, fire)
        watch.arm()
        return watch.disarm

    register("calendar", _schema(hub), attach)

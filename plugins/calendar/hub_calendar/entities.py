"""The calendar entities: one per file, ``on`` while one of its events is happening.

Each entity has two timers: one at its next event boundary (a start or an end), where the state
changes, and one at the next look at the file's modification time (``check_interval``, a ``stat``
and nothing more unless the file changed). Nothing polls the calendar itself. Triggers on a calendar
listen here, so a file read again re-aims them at once.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from hub.devices import Device, EntitySpec
from hub.devices.model import slugify

from hub_calendar.calendars import CalendarFile, TooManyOccurrences
from hub_calendar.config import CalendarConfig

log = logging.getLogger("hub.plugins.calendar")

CALENDAR_DIR = "calendars"


def hub_tz(hub: Any) -> dt.tzinfo:
    name = hub.time_zone
    return ZoneInfo(name) if name else dt.datetime.now().astimezone().tzinfo  # type: ignore[return-value]


def calendar_paths(config_dir: Path, config: CalendarConfig) -> list[tuple[Path, str]]:
    """(path, name shown to the user) of each calendar file, by the ``files`` option or every
    ``calendars/*.ics``."""
    folder = config_dir / CALENDAR_DIR
    if config.files is None:
        found = sorted(folder.glob("*.ics")) if folder.is_dir() else []
    else:
        found = [Path(f) if Path(f).is_absolute() else folder / f for f in config.files]
    return [(p, f"{CALENDAR_DIR}/{p.name}" if p.parent == folder else str(p)) for p in found]


class CalendarEntity:
    def __init__(self, hub: Any, file: CalendarFile, handle: Any, check_interval: float) -> None:
        self.hub = hub
        self.file = file
        self.handle = handle
        self.check_interval = check_interval
        self.listeners: list[Callable[[], None]] = []
        self.timer: Any = None  # at the next boundary
        self.check_timer: Any = None  # at the next look at the file
        self._shown: Any = None

    @property
    def entity_id(self) -> str:
        return self.handle.entity_id

    def check(self) -> None:
        """The periodic look at the file: a stat, and the lookups only when it changed."""
        self.check_timer = None
        if self.file.refresh():
            self.changed()
        else:
            self._aim_check()

    def _aim_check(self) -> None:
        if self.check_timer is not None:
            self.check_timer.cancel()
        self.check_timer = self.hub.scheduler.call_later(self.check_interval, self.check)

    def changed(self) -> None:
        """The file was read anew: tell the triggers, then show what it now holds."""
        if self.file.error:
            log.error("calendar %s: %s", self.entity_id, self.file.error)
        for listener in list(self.listeners):
            listener()
        self.update(read=False)

    def update(self, *, read: bool = True) -> None:
        """Set the state from the calendar (read again first if the file changed) and aim the timer
        at the next boundary."""
        if read and self.file.refresh():
            self.changed()
            return
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        self._aim_check()
        boundary = None
        if self.file.calendar is None:
            shown: Any = ("unavailable",)
            if self._shown != shown:
                self.handle.set_unavailable()
        else:
            try:
                current, event, boundary = self.file.now(self.hub.now())
            except TooManyOccurrences as exc:
                self._too_many(str(exc))
                return
            attributes = event.attributes(self.file.tz) if event is not None else {}
            shown = ("on" if current else "off", attributes)
            if self._shown != shown:
                self.handle.set(shown[0], **attributes)
        self._shown = shown
        if boundary is not None:
            self.timer = self.hub.scheduler.call_at(boundary, self.update)

    def _too_many(self, message: str) -> None:
        """Too heavy to look up: unavailable, said once, until the file changes (a bigger
        ``max_events`` needs a restart)."""
        if self._shown != ("too many",):
            self._shown = ("too many",)
            self.file.error = message
            log.error("calendar %s: %s", self.entity_id, message)
            self.handle.set_unavailable()
            for listener in list(self.listeners):
                listener()

    def stop(self) -> None:
        for timer in (self.timer, self.check_timer):
            if timer is not None:
                timer.cancel()
        self.timer = self.check_timer = None


class Calendars:
    """Every calendar of this hub, by entity id."""

    def __init__(self, hub: Any, config: CalendarConfig) -> None:
        self.hub = hub
        self.config = config
        self.tz = hub_tz(hub)
        self.by_entity: dict[str, CalendarEntity] = {}

    def discover(self) -> None:
        for path, name in calendar_paths(self.hub.config_dir, self.config):
            file = CalendarFile(path, name, self.tz, max_bytes=self.config.max_file_bytes,
                                max_events=self.config.max_events)
            stem = slugify(path.stem)
            handles = self.hub.add_device(
                Device(id=stem, name=f"Calendar {path.stem}", model="iCalendar file", connection=str(path)),
                [EntitySpec(key="calendar", capability="calendar", name=path.stem, object_id=stem)],
            )
            entity = CalendarEntity(self.hub, file, handles["calendar"], self.config.check_interval)
            entity.listeners.append(self.report)
            self.by_entity[entity.entity_id] = entity

    def start(self) -> None:
        if not self.by_entity:
            self.hub.note(f"no calendar: no .ics file in {self.hub.config_dir / CALENDAR_DIR}"
                          if self.config.files is None else "no calendar: files is empty")
        for entity in self.by_entity.values():
            entity.update()

    def report(self) -> None:
        """The broken files, in ``hub plugins``' note for this plugin (None once all are fine)."""
        errors = [e.file.error for e in self.by_entity.values() if e.file.error]
        self.hub.note("; ".join(errors) if errors else None)

    def stop(self) -> None:
        for entity in self.by_entity.values():
            entity.stop()

"""One ``.ics`` file: read with the ``ical`` library (what Home Assistant's local calendar uses), and
the lookups the entity and the trigger need, each bounded by ``max_events`` occurrences.

Times are unix seconds on the hub's clock; an all-day event and a "floating" time (no time zone in
the file) are placed in the hub's time zone, as Home Assistant places them in its own.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ical.calendar import Calendar
from ical.calendar_stream import IcsCalendarStream

#: Home Assistant's format of a calendar entity's ``start_time`` and ``end_time``.
HA_TIME = "%Y-%m-%d %H:%M:%S"
#: Recurrences this often would make every lookup walk millions of occurrences of the past.
_TOO_OFTEN = re.compile(r"^RRULE[;:].*FREQ=(SECONDLY|MINUTELY)", re.IGNORECASE | re.MULTILINE)


@dataclass(frozen=True)
class Occurrence:
    """One occurrence of an event (each of a recurring event's is one)."""

    uid: str | None
    summary: str
    description: str | None
    location: str | None
    start: dt.date | dt.datetime  # aware datetime, or a date for an all-day event
    end: dt.date | dt.datetime
    all_day: bool
    start_ts: float
    end_ts: float

    def _local(self, value: dt.date | dt.datetime, tz: dt.tzinfo) -> dt.datetime:
        if isinstance(value, dt.datetime):
            return value.astimezone(tz)
        return dt.datetime.combine(value, dt.time(), tz)

    def attributes(self, tz: dt.tzinfo) -> dict[str, Any]:
        """The attributes of Home Assistant's calendar entity for this event."""
        return {
            "message": self.summary,
            "description": self.description or "",
            "location": self.location or "",
            "start_time": self._local(self.start, tz).strftime(HA_TIME),
            "end_time": self._local(self.end, tz).strftime(HA_TIME),
            "all_day": self.all_day,
        }

    def as_trigger(self, tz: dt.tzinfo) -> dict[str, Any]:
        """``trigger.calendar_event`` as Home Assistant fills it: ISO dates for an all-day event,
        local ISO date-times otherwise."""
        def iso(value: dt.date | dt.datetime) -> str:
            return value.isoformat() if self.all_day else self._local(value, tz).isoformat()

        return {"summary": self.summary, "start": iso(self.start), "end": iso(self.end), "all_day": self.all_day,
                "description": self.description or "", "location": self.location or "", "uid": self.uid}


class CalendarError(Exception):
    """A file that cannot be used; the message names the file and, where found, the line."""


class TooManyOccurrences(CalendarError):
    """A lookup walked ``max_events`` occurrences without reaching an answer."""


def _line_of(text: str, exc: Exception) -> int | None:
    """The line the parser's complaint is about. ``ical`` names the offending content line or value
    but not its line number, so it is looked up in the text."""
    message = str(exc)
    hints: list[str] = []
    unexpected = re.search(r"value='([^']+)'", message)
    if unexpected and "expected END" in message:
        hints.append(f"END:{unexpected.group(1)}")
    detail = getattr(exc, "detailed_error", None) or ""
    if ": " in detail:
        hints.append(detail.rsplit(": ", 1)[1].strip())
    hints += [h for h in re.findall(r"'([^'\n]{3,})'", message) if "(" not in h]
    lines = text.splitlines()
    for hint in hints:
        for number, line in enumerate(lines, 1):
            if hint and hint in line:
                return number
    return None


def parse(text: str, name: str) -> Calendar:
    """The calendar in ``text``, or a ``CalendarError`` naming ``name`` and the line."""
    found = _TOO_OFTEN.search(text)
    if found:
        line = text.count("\n", 0, found.start()) + 1
        raise CalendarError(f"{name} line {line}: events repeating {found.group(1).lower()} are not supported "
                            "(every lookup would walk all their past occurrences)")
    try:
        return IcsCalendarStream.calendar_from_ics(text)
    except Exception as exc:  # noqa: BLE001 - the library raises CalendarParseError, ValueError, pydantic's errors
        line = _line_of(text, exc)
        what = getattr(exc, "detailed_error", None) if "detailed_error" in str(exc) else None
        reason = " ".join(str(what or exc).split())
        if len(reason) > 300:
            reason = reason[:297] + "..."
        raise CalendarError(f"{name}{f' line {line}' if line else ''}: {reason}") from None


class CalendarFile:
    """A calendar file and what it held when last read; ``error`` says why it holds nothing."""

    def __init__(self, path: Path, name: str, tz: dt.tzinfo, *, max_bytes: int, max_events: int) -> None:
        self.path = path
        self.name = name  # as shown to the user: calendars/work.ics
        self.tz = tz
        self.max_bytes = max_bytes
        self.max_events = max_events
        self.calendar: Calendar | None = None
        self.error: str | None = None
        self._seen: tuple[int, int] | None = None  # (mtime_ns, size) of what was read

    def refresh(self) -> bool:
        """Read the file again if it changed since last read; True when it was read."""
        try:
            stat = self.path.stat()
            seen = (stat.st_mtime_ns, stat.st_size)
        except OSError as exc:
            seen = (-1, -1)
            if self._seen != seen:
                self._seen, self.calendar = seen, None
                self.error = f"{self.name}: cannot be read: {exc.strerror or exc}"
                return True
            return False
        if seen == self._seen:
            return False
        self._seen = seen
        try:
            if stat.st_size > self.max_bytes:
                raise CalendarError(f"{self.name}: {stat.st_size} bytes is more than max_file_bytes "
                                    f"({self.max_bytes})")
            try:
                text = self.path.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                raise CalendarError(f"{self.name}: cannot be read: {exc}") from None
            self.calendar, self.error = parse(text, self.name), None
        except CalendarError as exc:
            self.calendar, self.error = None, str(exc)
        return True

    # --- lookups ----------------------------------------------------------------------------------
    def _occurrence(self, event: Any) -> Occurrence:
        def placed(value: dt.date | dt.datetime) -> tuple[dt.date | dt.datetime, float]:
            if isinstance(value, dt.datetime):
                value = value if value.tzinfo is not None else value.replace(tzinfo=self.tz)
                return value, value.timestamp()
            return value, dt.datetime.combine(value, dt.time(), self.tz).timestamp()

        start, start_ts = placed(event.start)
        end, end_ts = placed(event.end)
        return Occurrence(uid=event.uid, summary=event.summary or "", description=event.description,
                          location=event.location, start=start, end=end,
                          all_day=not isinstance(event.start, dt.datetime), start_ts=start_ts, end_ts=end_ts)

    def after(self, instant: float) -> Iterator[Occurrence]:
        """Occurrences still going on or starting after ``instant``, by start. ``ical``'s own
        ``active_after`` walks every past occurrence of a recurring event first, without bound (5,000
        weekly events since 2020: 19 s per lookup); this walks the same ordered items (those
        ``ical.timeline.materialize_timeline`` reads) and stops after ``max_events`` of them, past
        ones included, with ``TooManyOccurrences``."""
        if self.calendar is None:
            return
        at = dt.datetime.fromtimestamp(instant, self.tz)
        for walked, item in enumerate(self.calendar.timeline_tz(self.tz)._iterable):
            if walked >= self.max_events:
                raise TooManyOccurrences(
                    f"{self.name}: more than max_events ({self.max_events}) occurrences to walk through "
                    f"(past ones included) in one lookup; raise max_events or remove old recurring events")
            if item.key.start > at or item.key.end > at:
                yield self._occurrence(item.item)

    def now(self, instant: float) -> tuple[Occurrence | None, Occurrence | None, float | None]:
        """(the event going on, the event to show, the next time either changes). The event shown
        is the current one, else the next, as Home Assistant's calendar entity shows."""
        current = shown = None
        boundary: float | None = None
        for occ in self.after(instant):
            if boundary is not None and occ.start_ts >= boundary:
                break  # by start: no later occurrence starts or ends sooner
            if occ.start_ts <= instant:
                current = current or occ
                edge = occ.end_ts
            else:
                edge = occ.start_ts
            shown = shown or occ
            boundary = edge if boundary is None else min(boundary, edge)
        return current, current or shown, boundary

    def next_edge(self, after: float, edge: str, offset: float) -> tuple[float | None, list[Occurrence]]:
        """The first time after ``after`` when an occurrence's ``edge`` (start or end) plus
        ``offset`` falls, and every occurrence whose edge falls then."""
        instant = after - offset
        best: float | None = None
        found: list[Occurrence] = []
        for occ in self.after(instant):
            if best is not None and occ.start_ts > best:
                break
            at = occ.start_ts if edge == "start" else occ.end_ts
            if at <= instant:
                continue
            if best is None or at < best:
                best, found = at, [occ]
            elif at == best:
                found.append(occ)
        return (None if best is None else best + offset), found

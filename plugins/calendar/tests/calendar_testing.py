"""An .ics written from RFC 5545's examples and Home Assistant's calendar docs, and a hub on a
simulated clock with the calendar plugin (tests/rules/conftest.py's fake home beside it)."""

from __future__ import annotations

import hub_calendar
from hub import hookimpl
from hub.devices import Device, EntitySpec
from tests.rules.conftest import START, Home, RuleHub

__all__ = ["ICS", "START", "CalendarHub", "FrontLight", "Notes"]

# START is 2026-01-01 10:00 UTC, a Thursday. The hub's time zone is UTC; the weekly event is in Paris
# time (UTC+1 in winter), as a calendar exported from a phone would be.
ICS = """\
BEGIN:VCALENDAR
PRODID:-//RDU Software//NONSGML HandCal//EN
VERSION:2.0
BEGIN:VEVENT
UID:19970901T130000Z-123401@example.com
DTSTAMP:19970901T130000Z
DTSTART:20260101T103000Z
DTEND:20260101T110000Z
SUMMARY:Annual Employee Review
DESCRIPTION:Bring the goals sheet
LOCATION:Room 101
CATEGORIES:BUSINESS,HUMAN RESOURCES
END:VEVENT
BEGIN:VEVENT
UID:19970901T130000Z-123403@example.com
DTSTAMP:19970901T130000Z
DTSTART;VALUE=DATE:20260102
DTEND;VALUE=DATE:20260103
SUMMARY:Our Blissful Anniversary
TRANSP:TRANSPARENT
CLASS:CONFIDENTIAL
END:VEVENT
BEGIN:VEVENT
UID:front-lights-weekly@example.com
DTSTAMP:19970901T130000Z
DTSTART;TZID=Europe/Paris:20260101T130000
DTEND;TZID=Europe/Paris:20260101T140000
RRULE:FREQ=WEEKLY;BYDAY=TH
SUMMARY:Front Lights
END:VEVENT
END:VCALENDAR
"""

# In hub seconds from START: the one-off 10:30-11:00, the weekly 12:00-13:00 UTC each Thursday,
# the all-day event all of 2 January.
ONE_OFF = (START + 1800, START + 3600)
WEEKLY = (START + 7200, START + 10800)
ALL_DAY = (START + 14 * 3600, START + 38 * 3600)
WEEK = 7 * 86400


class FrontLight:
    """HA's calendar example switches ``light.front``; this is it."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []

    @hookimpl
    def hub_discover(self, hub):
        handles = hub.add_device(Device(id="front", name="Front"),
                                 [EntitySpec(key="light", capability="light", object_id="front")])
        handles["light"].set("off")

    @hookimpl
    def hub_handle_command(self, entity, command, args):
        self.calls.append((entity.entity_id, command))
        entity.set("on" if command == "turn_on" else "off")


class Notes:
    """Where the rules' notifications arrive."""

    def __init__(self) -> None:
        self.sent: list[dict] = []

    @hookimpl
    def hub_notify(self, notification):
        self.sent.append(notification)
        return "noted"


class CalendarHub(RuleHub):
    def __init__(self, path, clock, config: str = "calendar:\n") -> None:
        super().__init__(path, clock, Home())
        (path / "configuration.yaml").write_text(
            "hub: {time_zone: UTC, commit_interval: 0.01}\n" + config)
        self.front = FrontLight()
        self.notes = Notes()
        self.plugins = {"calendar": hub_calendar, "front": self.front, "notes": self.notes}

    def calendar(self, name: str, text: str = ICS):
        folder = self.path / "calendars"
        folder.mkdir(exist_ok=True)
        path = folder / f"{name}.ics"
        path.write_text(text)
        return path

    def state(self, entity_id: str):
        return self.hub.states.get(entity_id)

    async def at(self, when: float) -> None:
        await self.clock.advance(when - self.clock.now())

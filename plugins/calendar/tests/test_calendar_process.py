"""The calendar plugin in a real ``hub run`` on the demo home: an event added to a calendar file
while the hub runs starts a few seconds later and turns the demo's light on through a ``calendar``
trigger, its end turns it off, the entity follows; a broken file is named in ``hub plugins``."""

from __future__ import annotations

import sqlite3
import time
from datetime import datetime, timedelta, timezone

from tests.hubproc import DEMO, HubProcess, run_cli

RULES = """
- id: lights_by_calendar
  triggers:
    - trigger: calendar
      event: start
      entity_id: calendar.house
    - trigger: calendar
      event: end
      entity_id: calendar.house
  actions:
    - if: "{{ trigger.event == 'start' }}"
      then:
        - action: light.turn_on
          target: {entity_id: light.living_room}
      else:
        - action: light.turn_off
          target: {entity_id: light.living_room}
"""


def ics(*events: tuple[datetime, datetime, str]) -> str:
    def stamp(moment: datetime) -> str:
        return moment.astimezone(timezone.utc).strftime("%Y%m%dT%H%M%SZ")

    body = "".join(f"BEGIN:VEVENT\nUID:{i}@test\nDTSTAMP:20260101T000000Z\nDTSTART:{stamp(a)}\nDTEND:{stamp(b)}\n"
                   f"SUMMARY:{what}\nEND:VEVENT\n" for i, (a, b, what) in enumerate(events))
    return f"BEGIN:VCALENDAR\nVERSION:2.0\nPRODID:-//test//EN\n{body}END:VCALENDAR\n"


def rule_commands(data) -> list[tuple[str, str]]:
    with sqlite3.connect(data / "hub.db") as db:
        return db.execute("SELECT entity_id, command FROM command_log WHERE source LIKE 'rule:lights_by_calendar%' "
                          "ORDER BY id").fetchall()


def test_an_event_starting_after_start_up_switches_the_demo_light(tmp_path):
    data = tmp_path / "data"
    (data / "calendars").mkdir(parents=True)
    (data / "configuration.yaml").write_text("hub: {commit_interval: 0.1}\n" + DEMO + "calendar: {check_interval: 1}\n")
    (data / "automations.yaml").write_text(RULES)
    tomorrow = datetime.now(timezone.utc) + timedelta(days=1)
    house = data / "calendars" / "house.ics"
    house.write_text(ics((tomorrow, tomorrow + timedelta(hours=1), "Cleaning")))
    (data / "calendars" / "broken.ics").write_text("BEGIN:VCALENDAR\nVERSION:2.0\nnot a content line\nEND:VCALENDAR\n")
    hub = HubProcess(data).start()
    try:
        assert hub.get("/api/rules/lights_by_calendar")["status"] == "on"
        state = hub.get("/api/states/calendar.house")
        assert (state["state"], state["attributes"]["message"]) == ("off", "Cleaning")
        [plugin] = [p for p in hub.get("/api/plugins") if p["name"] == "calendar"]
        assert "calendars/broken.ics line 3:" in plugin["note"]
        # An event added while the hub runs: read within check_interval, it starts a few seconds on.
        start = datetime.now(timezone.utc).replace(microsecond=0) + timedelta(seconds=5)
        house.write_text(ics((start, start + timedelta(seconds=3), "Evening lights"),
                             (tomorrow, tomorrow + timedelta(hours=1), "Cleaning")))
        hub.wait_for(lambda: hub.get("/api/states/calendar.house")["attributes"]["message"] == "Evening lights",
                     timeout=5, what="the edited file read")
        assert rule_commands(data) == []
        hub.wait_for(lambda: rule_commands(data) == [("light.living_room", "turn_on")], timeout=15,
                     what="the light turned on at the event's start")
        assert time.time() >= start.timestamp()
        assert hub.get("/api/states/light.living_room")["state"] == "on"
        assert hub.get("/api/states/calendar.house")["state"] == "on"
        hub.wait_for(lambda: rule_commands(data)[-1:] == [("light.living_room", "turn_off")], timeout=15,
                     what="the light turned off at the event's end")
        assert hub.get("/api/states/calendar.house")["state"] == "off"
        cli = run_cli(data, "plugins")
        assert "broken.ics line 3" in cli.stdout, cli.stdout
    finally:
        hub.stop()

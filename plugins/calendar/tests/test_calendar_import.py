"""``hub rules import`` brings Home Assistant's local calendars along: ``.storage/local_calendar.<name>.ics``
becomes ``calendars/<name>.ics``, so ``calendar.<name>`` in the imported automations keeps working."""

from __future__ import annotations

from click.testing import CliRunner

from calendar_testing import ICS, ONE_OFF, START, CalendarHub
from hub.testing import FakeScheduler
from hub.cli import main

# HA's calendar docs, "Example: calendar notification", as written there.
AUTOMATIONS = """\
- id: "1700000000100"
  alias: Calendar notification
  triggers:
    - trigger: calendar
      event: start
      entity_id: calendar.personal
      offset: -0:15:0
  actions:
    - action: persistent_notification.create
      data:
        message: >-
          Event {{ trigger.calendar_event.summary }} @
          {{ trigger.calendar_event.start }}
"""


def imported(data, folder, *args):
    # No hub runs at this address: the command falls back to the data directory.
    return CliRunner().invoke(main, ["--data", str(data), "rules", "import", str(folder), "--no-input", *args,
                                     "--url", "http://127.0.0.1:9"], env={"COLUMNS": "250"}, catch_exceptions=False)


async def test_local_calendars_are_copied_to_calendars_and_the_automation_runs(tmp_path):
    folder = tmp_path / "homeassistant"
    (folder / ".storage").mkdir(parents=True)
    (folder / "automations.yaml").write_text(AUTOMATIONS)
    (folder / ".storage" / "local_calendar.personal.ics").write_text(ICS)
    data = tmp_path / "hub-data"
    data.mkdir()
    (data / "configuration.yaml").write_text("hub: {time_zone: UTC}\ncalendar:\n")
    result = imported(data, folder)
    copy = data / "calendars" / "personal.ics"
    assert copy.read_text() == ICS
    row = next(line for line in result.output.splitlines() if "calendars/personal.ics" in line)
    assert "calendar.personal" in row and "copied" in row
    # The imported automation names calendar.personal, which the hub's next start will have.
    auto = next(line for line in result.output.splitlines() if "1700000000100" in line)
    assert "loaded" in auto and "not loaded" not in auto
    assert result.exit_code == 0, result.output
    # The hub started on what was imported: the automation fires 15 minutes before the review.
    ch = CalendarHub(data, FakeScheduler(START))
    try:
        await ch.start()
        await ch.at(ONE_OFF[0] - 900)
        assert [n["message"] for n in ch.notes.sent] == ["Event Annual Employee Review @ 2026-01-01T10:30:00+00:00"]
    finally:
        await ch.stop()
    # Imported again: the same file is "already there", a changed one is kept unless --force.
    copy.write_text(ICS.replace("Annual", "Yearly"))
    again = imported(data, folder)
    assert "kept the hub's copy" in next(line for line in again.output.splitlines() if "calendars/personal.ics" in line)
    assert "Yearly" in copy.read_text()

"""A calendar file as an entity, on a simulated clock: ``on`` exactly while an event is happening,
Home Assistant's attributes, a recurring event each week, an edited file read again, a bad file
refused with its line while the other calendars work."""

from __future__ import annotations

import os

from calendar_testing import ALL_DAY, ICS, ONE_OFF, START, WEEK, WEEKLY, CalendarHub
from hub.testing import FakeScheduler


async def test_state_is_on_exactly_while_an_event_happens(ch: CalendarHub):
    ch.calendar("personal")
    await ch.start()
    state = ch.state("calendar.personal")
    assert state.state == "off"
    # Off, it shows the next event, as Home Assistant's calendar entity does.
    assert state.attributes["message"] == "Annual Employee Review"
    assert state.attributes["start_time"] == "2026-01-01 10:30:00"

    await ch.at(ONE_OFF[0] - 1)
    assert ch.state("calendar.personal").state == "off"
    await ch.at(ONE_OFF[0])
    state = ch.state("calendar.personal")
    assert state.state == "on"
    assert {k: state.attributes[k] for k in ("message", "description", "location", "start_time", "end_time",
                                             "all_day")} == {
        "message": "Annual Employee Review", "description": "Bring the goals sheet", "location": "Room 101",
        "start_time": "2026-01-01 10:30:00", "end_time": "2026-01-01 11:00:00", "all_day": False}
    await ch.at(ONE_OFF[1])
    assert ch.state("calendar.personal").state == "off"

    await ch.at(WEEKLY[0])  # 13:00 in Paris is 12:00 in the hub's UTC
    state = ch.state("calendar.personal")
    assert (state.state, state.attributes["message"], state.attributes["start_time"]) == \
        ("on", "Front Lights", "2026-01-01 12:00:00")
    await ch.at(WEEKLY[1])
    state = ch.state("calendar.personal")
    assert (state.state, state.attributes["message"]) == ("off", "Our Blissful Anniversary")


async def _hub_at(tmp_path, when: float, name: str) -> CalendarHub:
    """A hub started at ``when``: the simulated clock steps through every timer of the hub, so days
    are covered by starting later rather than by stepping through them."""
    folder = tmp_path / name
    folder.mkdir()
    ch = CalendarHub(folder, FakeScheduler(when))
    ch.calendar("personal")
    await ch.start()
    return ch


async def test_an_all_day_event_is_on_from_midnight_to_midnight(tmp_path):
    ch = await _hub_at(tmp_path, ALL_DAY[0] - 2, "a")
    try:
        assert ch.state("calendar.personal").state == "off"
        await ch.at(ALL_DAY[0])
        state = ch.state("calendar.personal")
        assert (state.state, state.attributes["message"], state.attributes["all_day"]) == \
            ("on", "Our Blissful Anniversary", True)
        assert (state.attributes["start_time"], state.attributes["end_time"]) == \
            ("2026-01-02 00:00:00", "2026-01-03 00:00:00")
    finally:
        await ch.stop()
    ch = await _hub_at(tmp_path, ALL_DAY[1] - 2, "b")
    try:
        assert ch.state("calendar.personal").state == "on"
        await ch.at(ALL_DAY[1])
        assert ch.state("calendar.personal").state == "off"
    finally:
        await ch.stop()


async def test_a_weekly_event_comes_back_each_week(tmp_path):
    for week in (1, 2):
        ch = await _hub_at(tmp_path, WEEKLY[0] + week * WEEK - 2, f"w{week}")
        try:
            state = ch.state("calendar.personal")
            assert (state.state, state.attributes["message"]) == ("off", "Front Lights")
            await ch.at(WEEKLY[0] + week * WEEK)
            assert ch.state("calendar.personal").state == "on"
            await ch.at(WEEKLY[1] + week * WEEK)
            assert ch.state("calendar.personal").state == "off"
        finally:
            await ch.stop()


async def test_the_entity_wakes_at_boundaries_not_on_a_loop(ch: CalendarHub):
    ch.calendar("personal")
    await ch.start()
    # Its timers: the next boundary (10:30) and the next look at the file (check_interval, 60 s).
    assert {ONE_OFF[0], START + 60} <= set(ch.clock.pending())
    await ch.at(ONE_OFF[0] + 1)
    assert ch.state("calendar.personal").state == "on"


async def test_an_edited_file_is_read_again(ch: CalendarHub, tmp_path):
    path = ch.calendar("personal")
    await ch.start()
    assert ch.state("calendar.personal").attributes["message"] == "Annual Employee Review"
    path.write_text(ICS.replace("Annual Employee Review", "Quarterly Review"))
    os.utime(path, ns=(1, 1))  # a different modification time, whatever the file system's resolution
    await ch.clock.advance(61)  # the next look at the file (check_interval: 60 s)
    assert ch.state("calendar.personal").attributes["message"] == "Quarterly Review"


async def test_a_bad_file_is_named_with_its_line_and_the_others_still_work(ch: CalendarHub):
    ch.calendar("personal")
    ch.calendar("broken", ICS.replace("DTSTART:20260101T103000Z", "DTSTART:2026XX01T103000Z"))
    ch.calendar("garbage", "BEGIN:VCALENDAR\nVERSION:2.0\nthis is not a content line\nEND:VCALENDAR\n")
    await ch.start()
    assert ch.state("calendar.personal").state == "off"
    assert not ch.state("calendar.broken").available
    note = ch.hub.plugins.info["calendar"].note
    assert "calendars/broken.ics line 7:" in note and "2026XX01T103000Z" in note
    assert "calendars/garbage.ics line 3:" in note
    await ch.at(ONE_OFF[0])
    assert ch.state("calendar.personal").state == "on"
    # Fixed, they are read at the next look at the files and the note goes.
    for name in ("broken", "garbage"):
        path = ch.path / "calendars" / f"{name}.ics"
        path.write_text(ICS)
        os.utime(path, ns=(1, 1))
    await ch.clock.advance(61)
    assert ch.state("calendar.broken").state == "on"
    assert ch.hub.plugins.info["calendar"].note is None


async def test_a_too_large_file_and_a_secondly_rule_are_refused(tmp_path, clock):
    ch = CalendarHub(tmp_path, clock, "calendar: {max_file_bytes: 2000}\n")
    ch.calendar("big", ICS + "X-PAD:" + "x" * 3000 + "\n")
    ch.calendar("often", ICS.replace("RRULE:FREQ=WEEKLY;BYDAY=TH", "RRULE:FREQ=SECONDLY"))
    try:
        await ch.start()
        note = ch.hub.plugins.info["calendar"].note
        assert "calendars/big.ics:" in note and "max_file_bytes (2000)" in note
        assert "calendars/often.ics line" in note and "secondly" in note
    finally:
        await ch.stop()


async def test_files_can_be_listed_in_the_configuration(tmp_path, clock):
    ch = CalendarHub(tmp_path, clock, "calendar:\n  files: [work.ics]\n")
    ch.calendar("work")
    ch.calendar("ignored")
    try:
        await ch.start()
        assert ch.state("calendar.work") is not None
        assert ch.state("calendar.ignored") is None
    finally:
        await ch.stop()


async def test_a_lookup_walks_at_most_max_events_occurrences(tmp_path):
    # 20 weeks on, the weekly event has 20 past occurrences to walk before the next: more than 10.
    ch = CalendarHub(tmp_path, FakeScheduler(START + 20 * WEEK), "calendar: {max_events: 10}\n")
    ch.calendar("personal")
    ch.write("""
- id: weekly
  trigger: {trigger: calendar, entity_id: calendar.personal}
  action: [{log: never}]
""")
    try:
        await ch.start()
        assert not ch.state("calendar.personal").available
        assert "calendars/personal.ics: more than max_events (10)" in ch.hub.plugins.info["calendar"].note
        await ch.clock.advance(3 * 3600)  # past the 21st occurrence
        assert ch.traces("weekly") == []
    finally:
        await ch.stop()


async def test_no_calendar_file_is_said_in_the_plugins_note(ch: CalendarHub):
    await ch.start()
    assert ch.hub.plugins.info["calendar"].note == f"no calendar: no .ics file in {ch.path / 'calendars'}"

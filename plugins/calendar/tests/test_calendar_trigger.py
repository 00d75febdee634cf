"""Home Assistant's ``calendar`` trigger on a simulated clock: once per occurrence at start or end
plus the offset, HA's variables, HA's documented automations unchanged, errors at load with their
line, and nothing fired twice across a restart."""

from __future__ import annotations

from calendar_testing import ONE_OFF, START, WEEK, WEEKLY, CalendarHub
from hub.testing import FakeScheduler

RULES = """
- id: before_start
  triggers:
    - trigger: calendar
      event: start
      entity_id: calendar.personal
      offset: "-00:15:00"
  actions:
    - action: light.turn_on
      target: {entity_id: light.lamp}
- id: at_end
  trigger:
    - platform: calendar
      event: end
      entity_id: calendar.personal
  action:
    - service: light.turn_off
      entity_id: light.lamp
"""


async def test_fires_at_start_with_offset_and_at_end_with_ha_variables(ch: CalendarHub):
    ch.calendar("personal")
    ch.write(RULES)
    await ch.start()
    assert ch.engine.rules["before_start"].rule is not None
    await ch.at(ONE_OFF[0] - 900 - 1)
    assert ch.traces("before_start") == []
    await ch.at(ONE_OFF[0] - 900)
    [trace] = ch.traces("before_start")
    trigger = trace["trigger"]
    assert (trigger["platform"], trigger["event"], trigger["offset"]) == ("calendar", "start", -900)
    assert {k: trigger["calendar_event"][k] for k in ("summary", "start", "end", "all_day", "description",
                                                      "location")} == {
        "summary": "Annual Employee Review", "start": "2026-01-01T10:30:00+00:00",
        "end": "2026-01-01T11:00:00+00:00", "all_day": False, "description": "Bring the goals sheet",
        "location": "Room 101"}
    assert ch.calls("turn_on", "light.lamp")
    await ch.at(ONE_OFF[1])
    [trace] = ch.traces("at_end")
    assert (trace["trigger"]["event"], trace["trigger"]["calendar_event"]["summary"]) == \
        ("end", "Annual Employee Review")
    assert ch.calls("turn_off", "light.lamp")
    # The weekly event: its start 15 minutes early, its end on time; each once.
    await ch.at(WEEKLY[1])
    assert [t["trigger"]["calendar_event"]["summary"] for t in ch.traces("before_start")] == \
        ["Annual Employee Review", "Front Lights"]
    assert len(ch.traces("at_end")) == 2


async def test_each_occurrence_of_a_recurring_event_fires(tmp_path):
    # A hub started just before the second week's occurrence: days are covered by starting later.
    ch = CalendarHub(tmp_path, FakeScheduler(WEEKLY[0] + WEEK - 60))
    ch.calendar("personal")
    ch.write(RULES)
    try:
        await ch.start()
        await ch.at(WEEKLY[1] + WEEK)
        [trace] = ch.traces("at_end")
        assert trace["trigger"]["calendar_event"]["start"] == "2026-01-08T12:00:00+00:00"
        assert ch.traces("before_start") == []  # 15 minutes before was before the hub started
    finally:
        await ch.stop()


# Home Assistant's calendar docs, "Example: calendar event light schedule", as written there.
HA_LIGHT_SCHEDULE = """
- alias: Front Light Schedule
  id: front_light_schedule
  triggers:
    - trigger: calendar
      event: start
      entity_id: calendar.device_automation_schedules
    - trigger: calendar
      event: end
      entity_id: calendar.device_automation_schedules
  conditions:
    - condition: template
      value_template: "{{ 'Front Lights' in trigger.calendar_event.summary }}"
  actions:
    - if:
        - "{{ trigger.event == 'start' }}"
      then:
        - action: light.turn_on
          entity_id: light.front
      else:
        - action: light.turn_off
          entity_id: light.front
- alias: Calendar notification
  id: calendar_notification
  triggers:
    - trigger: calendar
      event: start
      entity_id: calendar.device_automation_schedules
      offset: -0:15:0
  actions:
    - action: persistent_notification.create
      data:
        message: >-
          Event {{ trigger.calendar_event.summary }} @
          {{ trigger.calendar_event.start }}
"""


async def test_home_assistants_documented_calendar_automations_run_unchanged(ch: CalendarHub):
    ch.calendar("device_automation_schedules")
    ch.write(HA_LIGHT_SCHEDULE)
    await ch.start()
    assert all(lr.rule is not None for lr in ch.engine.rules.values()), ch.engine.issues
    await ch.at(ONE_OFF[1])
    assert ch.front.calls == []  # the review is not a "Front Lights" event
    await ch.at(WEEKLY[0])
    assert ch.front.calls == [("light.front", "turn_on")]
    await ch.at(WEEKLY[1])
    assert ch.front.calls == [("light.front", "turn_on"), ("light.front", "turn_off")]
    messages = [n["message"] for n in ch.notes.sent]
    assert messages == ["Event Annual Employee Review @ 2026-01-01T10:30:00+00:00",
                        "Event Front Lights @ 2026-01-01T12:00:00+00:00"]


BAD = """
- id: unknown_calendar
  trigger:
    - trigger: calendar
      entity_id: calendar.nope
  action:
    - log: never
- id: bad_offset
  trigger:
    - trigger: calendar
      entity_id: calendar.personal
      offset: "soon"
  action:
    - log: never
- id: bad_event
  trigger:
    - trigger: calendar
      event: middle
      entity_id: calendar.personal
  action:
    - log: never
"""


async def test_unknown_calendar_bad_offset_and_event_are_load_errors_with_their_line(ch: CalendarHub):
    ch.calendar("personal")
    path = ch.write(BAD)
    await ch.start()
    issues = [str(i) for i in ch.engine.issues]
    for rule_id, line, words in (("unknown_calendar", 5, "'calendar.nope' is not a calendar; known: calendar.personal"),
                                 ("bad_offset", 12, "'soon'"), ("bad_event", 18, "'start' or 'end'")):
        assert ch.engine.rules[rule_id].rule is None
        assert any(i.startswith(f"{path}:{line}") and words in i for i in issues), (rule_id, issues)


async def test_nothing_fires_twice_across_a_restart(tmp_path):
    clock = FakeScheduler(START)
    ch = CalendarHub(tmp_path, clock)
    ch.calendar("personal")
    ch.write(RULES)
    await ch.start()
    await ch.at(ONE_OFF[0] - 900)
    assert len(ch.traces("before_start")) == 1
    await ch.stop()
    # The hub comes back a minute later: the 10:15 firing is not repeated, the next one comes.
    await clock.advance(60)
    await ch.start()
    await ch.at(WEEKLY[0] - 900 - 1)
    assert ch.traces("before_start") == []
    assert len(ch.calls("turn_on", "light.lamp")) == 1  # from before the restart only
    await ch.at(WEEKLY[0] - 900)
    assert [t["trigger"]["calendar_event"]["summary"] for t in ch.traces("before_start")] == ["Front Lights"]
    await ch.stop()

"""Each trigger type, on a simulated clock."""

from tests.rules.conftest import START


async def test_state_trigger_to_and_from(rh):
    rh.write("""
        - id: ac_on_motion
          trigger:
            - trigger: state
              entity_id: binary_sensor.motion
              from: "off"
              to: "on"
          action:
            - call: switch.fan.turn_on
              entity_id: switch.fan
    """.replace("switch.fan.turn_on", "switch.turn_on"))
    await rh.start()
    rh.home.set("motion", "on")
    await rh.clock.settle()
    assert rh.calls("turn_on", "switch.fan") == [("switch.fan", "turn_on", {})]
    rh.home.set("motion", "on", battery=50)  # attributes only: no new trigger
    rh.home.set("motion", "off")
    await rh.clock.settle()
    assert len(rh.calls("turn_on")) == 1
    [trace] = rh.traces("ac_on_motion")
    assert trace["outcome"] == "finished"
    assert trace["trigger"]["to_state"]["state"] == "on" and trace["trigger"]["from_state"]["state"] == "off"
    assert trace["steps"][0]["action"] == "call" and "duration_ms" in trace["steps"][0]


async def test_state_trigger_for_fires_only_if_the_state_holds(rh):
    rh.write("""
        - id: motion_10min
          trigger:
            - trigger: state
              entity_id: binary_sensor.motion
              to: "on"
              for: "00:10:00"
          action:
            - call: switch.turn_on
              entity_id: switch.fan
    """)
    await rh.start()
    rh.home.set("motion", "on")
    await rh.clock.advance(300)
    rh.home.set("motion", "off")  # interrupted: the timer is cancelled
    await rh.clock.advance(600)
    assert rh.calls("turn_on") == []
    rh.home.set("motion", "on")
    await rh.clock.advance(599)
    assert rh.calls("turn_on") == []
    await rh.clock.advance(1)
    assert len(rh.calls("turn_on")) == 1
    assert rh.traces("motion_10min")[-1]["trigger"]["for"] == 600


async def test_attribute_trigger_and_not_to(rh):
    rh.write("""
        - id: battery
          trigger:
            - trigger: state
              entity_id: binary_sensor.motion
              attribute: battery
          action:
            - log: "battery {{ trigger.to_state.attributes.battery }}"
        - id: not_unavailable
          trigger:
            - trigger: state
              entity_id: sensor.temp
              not_to: unavailable
          action:
            - call: switch.toggle
              entity_id: switch.fan
    """)
    await rh.start()
    rh.home.set("motion", "off", battery=80)
    rh.home.set("motion", "off", battery=80)
    rh.home.set("temp", 21.0)
    rh.home.h["temp"].set_unavailable()
    await rh.clock.settle()
    assert [t["steps"][0]["result"]["message"] for t in rh.traces("battery")] == ["battery 80"]
    assert len(rh.calls("toggle")) == 1


async def test_numeric_state_fires_on_crossing_not_while_inside(rh):
    rh.write("""
        - id: cold
          trigger:
            - trigger: numeric_state
              entity_id: sensor.temp
              below: 15
          action:
            - call: switch.turn_off
              entity_id: switch.ac
    """)
    await rh.start()
    for value in (16.0, 14.0, 13.0, 12.0):
        rh.home.set("temp", value)
    await rh.clock.settle()
    assert len(rh.calls("turn_off")) == 1
    rh.home.set("temp", 18.0)
    rh.home.set("temp", 10.0)
    await rh.clock.settle()
    assert len(rh.calls("turn_off")) == 2
    rh.home.h["temp"].set_unavailable()  # unavailable is never below anything
    rh.home.set("temp", 9.0)  # back from unavailable and below: a crossing
    await rh.clock.settle()
    assert len(rh.calls("turn_off")) == 3


async def test_numeric_state_for(rh):
    rh.write("""
        - id: power_alert
          trigger:
            - trigger: numeric_state
              entity_id: sensor.power
              above: 1000
              for: {minutes: 5}
          action:
            - event: power_alert
              event_data: {watts: "{{ trigger.to_state.value }}"}
    """)
    await rh.start()
    events = []
    rh.hub.bus.subscribe("power_alert", events.append)
    rh.home.set("power", 1500.0)
    await rh.clock.advance(120)
    rh.home.set("power", 1800.0)  # still above: keeps counting
    await rh.clock.advance(120)
    rh.home.set("power", 500.0)  # dropped below: reset
    rh.home.set("power", 1200.0)
    await rh.clock.advance(299)
    assert events == []
    await rh.clock.advance(1)
    assert [e.payload for e in events] == [{"watts": 1200.0}]


async def test_time_and_time_pattern(rh):
    rh.write("""
        - id: morning
          trigger:
            - trigger: time
              at: "10:30:00"
          action:
            - call: switch.turn_on
              entity_id: switch.fan
        - id: every_15min
          trigger:
            - trigger: time_pattern
              minutes: "/15"
          action:
            - log: tick
    """)
    await rh.start()  # START is 10:00:00 UTC
    await rh.clock.advance(29 * 60 + 59)
    assert rh.calls("turn_on") == []
    await rh.clock.advance(1)
    assert len(rh.calls("turn_on")) == 1
    await rh.clock.advance(86400)  # and again the next day
    assert len(rh.calls("turn_on")) == 2
    # 10:15, 10:30, 10:45, ... over 24 h 30 min: 98 ticks
    assert len(rh.engine.traces.for_rule("every_15min")) == 20  # the trace log keeps the last 20
    assert rh.hub.now() - START == 24 * 3600 + 1800


async def test_event_trigger_with_data_filter(rh):
    from hub.core.events import CustomEvent

    rh.write("""
        - id: doorbell
          trigger:
            - trigger: event
              event_type: doorbell
              event_data: {button: front}
          action:
            - log: "ring {{ trigger.event.data.button }}"
    """)
    await rh.start()
    rh.hub.bus.publish(CustomEvent(rh.hub.now(), "doorbell", {"button": "back"}))
    rh.hub.bus.publish(CustomEvent(rh.hub.now(), "doorbell", {"button": "front"}))
    await rh.clock.settle()
    [trace] = rh.traces("doorbell")
    assert trace["steps"][0]["result"]["message"] == "ring front"


async def test_device_unavailable_and_available(rh):
    rh.write("""
        - id: lost
          trigger:
            - trigger: device_unavailable
              entity_id: sensor.temp
              for: 60
          action:
            - log: lost
        - id: back
          trigger:
            - trigger: device_available
              device_id: "home:home"
          action:
            - log: "back {{ trigger.entity_id }}"
    """)
    await rh.start()
    rh.home.h["temp"].set_unavailable()
    await rh.clock.advance(59)
    assert rh.traces("lost") == []
    await rh.clock.advance(1)
    assert len(rh.traces("lost")) == 1
    rh.home.set("temp", 20.0)
    await rh.clock.settle()
    assert rh.traces("back")[0]["steps"][0]["result"]["message"] == "back sensor.temp"


async def test_hub_start(rh):
    rh.write("""
        - id: started
          trigger:
            - trigger: hub_start
          action:
            - call: switch.turn_off
              entity_id: switch.ac
    """)
    await rh.start()
    await rh.clock.settle()
    assert rh.calls("turn_off", "switch.ac") == [("switch.ac", "turn_off", {})]


async def test_a_state_change_reaches_only_the_triggers_of_its_entity(rh):
    rules = "".join(f"""
        - id: r{i}
          trigger:
            - trigger: state
              entity_id: {'sensor.temp' if i == 0 else 'sensor.power'}
          action:
            - log: x
    """ for i in range(50))
    rh.write(rules)
    await rh.start()
    assert len(rh.engine._index["sensor.temp"]) == 1
    assert len(rh.engine._index["sensor.power"]) == 49
    rh.home.set("temp", 30.0)
    await rh.clock.settle()
    assert len(rh.traces("r0")) == 1 and all(rh.traces(f"r{i}") == [] for i in range(1, 50))

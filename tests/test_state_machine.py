"""State semantics users rely on (Home Assistant's): what changes last_changed, what fires events."""

from hub.core.bus import EventBus
from hub.core.events import StateChanged


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def make():
    from hub.core.state import StateMachine

    bus, clock = EventBus(), Clock()
    events: list[StateChanged] = []
    bus.subscribe(StateChanged, events.append)
    return StateMachine(bus, clock), clock, events


def test_first_write_creates_state_and_fires():
    sm, clock, events = make()
    s = sm.set("switch.a", "on", {"x": 1})
    assert (s.value, dict(s.attributes), s.available) == ("on", {"x": 1}, True)
    assert s.last_changed == s.last_updated == 1000.0
    assert len(events) == 1 and events[0].old_state is None and events[0].new_state is s


def test_identical_write_fires_nothing_and_keeps_times():
    sm, clock, events = make()
    sm.set("switch.a", "on", {"x": 1})
    clock.t = 2000.0
    s = sm.set("switch.a", "on", {"x": 1})
    assert len(events) == 1
    assert s.last_updated == 1000.0


def test_attribute_change_moves_last_updated_only():
    sm, clock, events = make()
    sm.set("light.a", "on", {"brightness": 10})
    clock.t = 1005.0
    s = sm.set("light.a", "on", {"brightness": 20})
    assert s.last_changed == 1000.0 and s.last_updated == 1005.0
    assert events[-1].old_state.attributes["brightness"] == 10


def test_value_change_moves_both_and_none_attributes_keep_old():
    sm, clock, events = make()
    sm.set("light.a", "on", {"brightness": 10})
    clock.t = 1007.0
    s = sm.set("light.a", "off")
    assert s.last_changed == s.last_updated == 1007.0
    assert s.attributes["brightness"] == 10


def test_unavailable_keeps_value_and_reads_unavailable():
    sm, clock, events = make()
    sm.set("sensor.t", 21.5)
    clock.t = 1010.0
    s = sm.set_available("sensor.t", False)
    assert s.value == 21.5 and s.state == "unavailable" and s.last_changed == 1010.0
    assert sm.set_available("sensor.t", False) is s  # no second event
    assert len(events) == 2


def test_states_are_immutable_snapshots():
    sm, clock, events = make()
    attrs = {"a": 1}
    s = sm.set("sensor.x", 1, attrs)
    attrs["a"] = 2
    assert s.attributes["a"] == 1
    try:
        s.attributes["a"] = 3  # type: ignore[index]
    except TypeError:
        pass
    else:
        raise AssertionError("attributes must be read-only")

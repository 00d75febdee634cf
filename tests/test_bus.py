import asyncio
import logging

from hub.core.bus import EventBus
from hub.core.events import CustomEvent, StateChanged
from hub.core.state import State


def changed(entity_id: str, value) -> StateChanged:
    return StateChanged(0.0, entity_id, None, State(entity_id, value))


def test_subscribe_by_type_and_entity_and_all():
    bus = EventBus()
    by_type, by_entity, everything = [], [], []
    bus.subscribe(StateChanged, by_type.append)
    bus.subscribe("state_changed", by_entity.append, entity_id="switch.b")
    bus.subscribe("*", everything.append)
    bus.publish(changed("switch.a", "on"))
    bus.publish(changed("switch.b", "on"))
    bus.publish(CustomEvent(0.0, "doorbell", {"x": 1}))
    assert [e.entity_id for e in by_type] == ["switch.a", "switch.b"]
    assert [e.entity_id for e in by_entity] == ["switch.b"]
    assert [e.event_type for e in everything] == ["state_changed", "state_changed", "doorbell"]


def test_custom_events_route_by_name():
    bus = EventBus()
    got = []
    bus.subscribe("doorbell", got.append)
    bus.publish(CustomEvent(0.0, "doorbell"))
    bus.publish(CustomEvent(0.0, "other"))
    assert [e.name for e in got] == ["doorbell"]


def test_a_failing_subscriber_does_not_stop_the_others(caplog):
    bus = EventBus()
    got = []

    def broken(event):
        raise RuntimeError("boom")

    bus.subscribe(StateChanged, broken)
    bus.subscribe(StateChanged, got.append)
    with caplog.at_level(logging.ERROR):
        bus.publish(changed("switch.a", "on"))
    assert len(got) == 1
    assert "boom" in caplog.text


def test_unsubscribe_inside_a_callback_is_safe():
    bus = EventBus()
    got = []
    unsub = None

    def once(event):
        got.append(event)
        unsub()

    unsub = bus.subscribe(StateChanged, once)
    bus.subscribe(StateChanged, got.append)
    bus.publish(changed("a.a", 1))
    bus.publish(changed("a.a", 2))
    assert len(got) == 3  # once + second subscriber twice


async def test_async_subscribers_run_as_tasks():
    bus = EventBus()
    got = []

    async def slow(event):
        await asyncio.sleep(0)
        got.append(event.entity_id)

    bus.subscribe(StateChanged, slow)
    bus.publish(changed("switch.a", "on"))
    assert got == []  # publish did not wait
    await bus.drain()
    assert got == ["switch.a"]

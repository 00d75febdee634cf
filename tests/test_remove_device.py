"""``hub.remove_device``: a driver deletes one of its devices (a Zigbee device removed from the
network), and its entities leave the hub, as in Home Assistant when a device is deleted."""

import pytest

from hub import hookimpl
from hub.devices import Device, EntitySpec
from hub.runtime import Hub

SPECS = [EntitySpec(key="power", capability="sensor", unit="W"), EntitySpec(key="relay", capability="switch")]


class Plug:
    @hookimpl
    def hub_discover(self, hub):
        self.ctx = hub
        self.handles = hub.add_device(Device(id="plug1", name="Plug"), SPECS)
        self.other = hub.add_device(Device(id="plug2", name="Other plug"), SPECS)


async def started(tmp_path) -> tuple[Hub, Plug]:
    (tmp_path / "configuration.yaml").write_text("hub: {}\n")
    hub, plug = Hub(tmp_path, entrypoints=False), Plug()
    hub.plugins.register("plug", plug)
    await hub.start()
    return hub, plug


async def test_a_removed_device_and_its_entities_are_gone_and_stay_gone_after_a_restart(tmp_path):
    hub, plug = await started(tmp_path)
    try:
        for handle in plug.handles.values():
            handle.set(1.0 if handle.key == "power" else "on")
        removed = plug.ctx.remove_device("plug1")
        assert sorted(removed) == sorted(h.entity_id for h in plug.handles.values())
        assert hub.devices.get("plug:plug1") is None
        for entity_id in removed:
            assert entity_id not in hub.states and entity_id not in hub.entities
            with pytest.raises(KeyError):
                plug.ctx.entity(entity_id)
        assert all(h.entity_id in hub.states for h in plug.other.values())  # the other device stays
    finally:
        await hub.stop()

    hub, plug = await started(tmp_path)  # discovers plug1 again: a fresh device, not the old rows
    try:
        assert hub.devices.get("plug:plug1") is not None
        assert all(not hub.states.get(h.entity_id).available for h in plug.handles.values())
        assert all(hub.states.get(h.entity_id).value is None for h in plug.handles.values())
        assert len(hub.entities) == 4
    finally:
        await hub.stop()


async def test_a_plugin_cannot_remove_a_device_it_does_not_own(tmp_path):
    hub, plug = await started(tmp_path)
    try:
        with pytest.raises(KeyError, match="not a device of plugin 'plug'"):
            plug.ctx.remove_device("nosuch")
    finally:
        await hub.stop()


async def test_removing_some_entities_keeps_the_device_and_its_other_entities(tmp_path):
    hub, plug = await started(tmp_path)
    events = []
    hub.bus.subscribe("entity_removed", events.append)
    hub.bus.subscribe("entity_registered", events.append)
    try:
        plug.handles["relay"].set("on")
        plug.handles["power"].set(3.0)
        removed = plug.ctx.remove_device("plug1", ["relay"])
        assert removed == [plug.handles["relay"].entity_id]
        assert hub.devices.get("plug:plug1") is not None
        assert hub.states.get(plug.handles["power"].entity_id).value == 3.0  # untouched
        assert [e.event_type for e in events] == ["entity_removed"]  # no remove-and-add of the rest
        with pytest.raises(KeyError):
            plug.ctx.remove_device("plug1", ["nope"])
        plug.ctx.remove_device("plug1", ["power"])  # the last one: the device goes too
        assert hub.devices.get("plug:plug1") is None
    finally:
        await hub.stop()

    hub, plug = await started(tmp_path)
    try:
        assert len(hub.entities) == 4  # discovered again afresh, nothing stale left in the store
    finally:
        await hub.stop()

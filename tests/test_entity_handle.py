"""What a driver's ``entity.set(value, **attributes)`` leaves in the state, write after write.

The handle skips rebuilding the attributes on a plain write (a new reading, nothing else) while the
state still carries the attributes of its own last plain write; these tests pin what that must keep.
"""

from hub import hookimpl
from hub.core.events import StateChanged
from hub.devices import Device, EntitySpec
from hub.runtime import Hub

SPEC = {"unit": "W", "device_class": "power", "friendly_name": "Meter power"}


class Meter:
    @hookimpl
    def hub_discover(self, hub):
        self.power = hub.add_device(
            Device(id="meter", name="Meter"), [EntitySpec(key="power", capability="sensor", device_class="power", unit="W")]
        )["power"]


async def started(tmp_path) -> tuple[Hub, Meter]:
    (tmp_path / "configuration.yaml").write_text("hub: {}\n")
    hub, meter = Hub(tmp_path, entrypoints=False), Meter()
    hub.plugins.register("meter", meter)
    await hub.start()
    return hub, meter


async def test_plain_writes_keep_the_spec_and_the_drivers_extra_attributes(tmp_path):
    hub, meter = await started(tmp_path)
    seen: list[StateChanged] = []
    hub.bus.subscribe(StateChanged, seen.append, entity_id=meter.power.entity_id)
    try:
        meter.power.set(1.0)
        assert dict(meter.power.state.attributes) == SPEC
        meter.power.set(2.0)
        meter.power.set(3.0, phase="L1")
        meter.power.set(4.0)  # a plain write keeps what the driver added
        assert dict(meter.power.state.attributes) == {**SPEC, "phase": "L1"}
        meter.power.set(5.0, unit="kW")
        assert meter.power.state.attributes["unit"] == "kW"
        meter.power.set(6.0)  # the spec's unit is always there again on the next plain write
        assert dict(meter.power.state.attributes) == {**SPEC, "phase": "L1"}
        meter.power.set(6.0)  # the same reading again: nothing fires
        assert [e.new_state.value for e in seen] == [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]
        assert [dict(e.new_state.attributes) for e in seen][-1] == {**SPEC, "phase": "L1"}
        # Attributes unchanged: last_changed moves with the value, and so does last_updated.
        assert seen[1].new_state.attributes is seen[0].new_state.attributes
    finally:
        await hub.stop()


async def test_a_write_after_unavailable_or_restart_carries_the_spec(tmp_path):
    hub, meter = await started(tmp_path)
    try:
        meter.power.set(1.0)
        meter.power.set_unavailable()
        meter.power.set(2.0)
        assert meter.power.state.available and dict(meter.power.state.attributes) == SPEC
    finally:
        await hub.stop()
    hub, meter = await started(tmp_path)  # the state comes back from the store
    try:
        meter.power.set(3.0)
        assert meter.power.state.available and dict(meter.power.state.attributes) == SPEC
    finally:
        await hub.stop()

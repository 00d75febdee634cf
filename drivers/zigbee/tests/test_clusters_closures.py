"""Door Lock, Window Covering and Thermostat: commands as ZCL, confirmation, refusals by status."""

import pytest
import zigpy_fake as zf
from clusters_kit import paired_hub
from zigpy.zcl import foundation
from zigpy.zcl.clusters.closures import DoorLock, WindowCovering
from zigpy.zcl.clusters.hvac import Thermostat

from hub.core.commands import CommandError, CommandRefused


async def test_a_lock_gets_the_code_as_its_pin_and_a_wrong_code_is_refused(tmp_path, caplog):
    async with paired_hub(tmp_path) as z:
        entities = await z.pair(lock := zf.lock())
        assert list(entities) == ["1_lock", "1_battery"]
        assert z.state("lock", "1_lock").value == "unlocked"
        lock.pin = "4321"

        await z.call("lock", "1_lock", "lock", {"code": "4321"})
        assert lock.received[-1][2:] == ("lock_door", {"pin_code": "4321"})
        assert z.app.zcl_sent(DoorLock.cluster_id)[-1][1] == b"\x044321"  # a ZCL character string
        assert lock.get(1, DoorLock.cluster_id, "lock_state") == 1
        assert z.state("lock", "1_lock").value == "locked"

        with pytest.raises(CommandRefused, match="ZCL status FAILURE"):
            await z.call("lock", "1_lock", "unlock", {"code": "0000"})
        assert z.state("lock", "1_lock").value == "locked"
        with pytest.raises(CommandRefused, match="unlatch"):
            await z.call("lock", "1_lock", "open", {"code": "4321"})

        lock.set(1, DoorLock.cluster_id, "lock_state", 2)  # turned by hand
        await zf.settle()
        assert z.state("lock", "1_lock").value == "unlocked"
        # The hub's command log keeps "***"; nothing of ours logs the code either.
        assert "4321" not in "".join(r.getMessage() for r in caplog.records if r.name.startswith(("hub", "zigbee")))


async def test_a_cover_counts_position_open_while_zcl_counts_lift_closed(tmp_path):
    async with paired_hub(tmp_path) as z:
        entities = await z.pair(cover := zf.cover())
        assert entities["1_cover"].spec.device_class == "shutter"
        assert z.state("cover", "1_cover").value == "closed"  # lift 100 % = closed
        assert z.state("cover", "1_cover").attributes["position"] == 0

        cover.reporting.clear()  # a slow motor: the position arrives later
        await z.call("cover", "1_cover", "set_position", {"position": 30})
        assert cover.received[-1][2:] == ("go_to_lift_percentage", {"percentage_lift_value": 70})
        assert z.state("cover", "1_cover").value == "opening"
        cover.set(1, WindowCovering.cluster_id, "current_position_lift_percentage", 70, report=True)
        await zf.settle()
        state = z.state("cover", "1_cover")
        assert (state.value, state.attributes["position"]) == ("open", 30)

        await z.call("cover", "1_cover", "close")
        assert cover.received[-1][2] == "down_close"
        assert z.state("cover", "1_cover").value == "closing"
        await z.call("cover", "1_cover", "stop")
        assert cover.received[-1][2] == "stop"
        assert z.state("cover", "1_cover").value in ("open", "closed")

        cover.refuse[(WindowCovering.cluster_id, "up_open")] = foundation.Status.FAILURE
        with pytest.raises(CommandRefused, match="FAILURE"):
            await z.call("cover", "1_cover", "open")


async def test_a_thermostat_in_hundredths_of_a_degree_with_its_modes_and_limits(tmp_path):
    async with paired_hub(tmp_path) as z:
        entities = await z.pair(thermo := zf.thermostat())
        assert list(entities) == ["1_climate"]  # mains powered: no battery entity
        state = z.state("thermostat", "1_climate")
        assert state.value == "heat"
        assert {k: state.attributes[k] for k in ("current_temperature", "target_temperature", "hvac_action",
                                                 "min_temp", "max_temp")} == {
            "current_temperature": 19.5, "target_temperature": 20.0, "hvac_action": "heating",
            "min_temp": 5.0, "max_temp": 32.0}

        await z.call("thermostat", "1_climate", "set_temperature", {"temperature": 21.5})
        assert thermo.get(1, Thermostat.cluster_id, "occupied_heating_setpoint") == 2150
        hdr, payload = z.app.zcl_sent(Thermostat.cluster_id)[-1]
        assert (hdr.command_id, payload) == (0x02, b"\x12\x00\x29\x66\x08")  # write 0x0012, int16 2150
        assert z.state("thermostat", "1_climate").attributes["target_temperature"] == 21.5
        with pytest.raises(CommandError, match="temperature"):  # the device's range, at the gate
            await z.call("thermostat", "1_climate", "set_temperature", {"temperature": 40})

        await z.call("thermostat", "1_climate", "set_hvac_mode", {"hvac_mode": "cool"})
        assert thermo.get(1, Thermostat.cluster_id, "system_mode") == 3
        state = z.state("thermostat", "1_climate")
        assert (state.value, state.attributes["target_temperature"]) == ("cool", 26.0)
        await z.call("thermostat", "1_climate", "turn_off")
        assert z.state("thermostat", "1_climate").value == "off"
        await z.call("thermostat", "1_climate", "turn_on")
        assert z.state("thermostat", "1_climate").value == "cool"  # the last mode other than off
        with pytest.raises(CommandRefused, match="no mode 'dry'"):
            await z.call("thermostat", "1_climate", "set_hvac_mode", {"hvac_mode": "dry"})

        thermo.refuse[(Thermostat.cluster_id, "occupied_cooling_setpoint")] = foundation.Status.INVALID_VALUE
        with pytest.raises(CommandRefused, match="INVALID_VALUE"):
            await z.call("thermostat", "1_climate", "set_temperature", {"temperature": 17})
        assert z.state("thermostat", "1_climate").attributes["target_temperature"] == 26.0

        thermo.set(1, Thermostat.cluster_id, "local_temperature", 2233)
        thermo.set(1, Thermostat.cluster_id, "running_state", 0x0002)
        await zf.settle()
        state = z.state("thermostat", "1_climate")
        assert (state.attributes["current_temperature"], state.attributes["hvac_action"]) == (22.33, "cooling")

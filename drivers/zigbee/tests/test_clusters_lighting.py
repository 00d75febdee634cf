"""On/Off, Level and Color Control: which entity a device gets, reports, commands as ZCL frames."""

import pytest
import zigpy_fake as zf
from clusters_kit import paired_hub
from zigpy.zcl import foundation
from zigpy.zcl.clusters.general import LevelControl, OnOff
from zigpy.zcl.clusters.lighting import Color

from hub.core.commands import CommandError, CommandRefused


async def test_a_plug_is_an_outlet_a_bare_relay_a_switch_per_endpoint_and_a_dimmer_a_light(tmp_path):
    async with paired_hub(tmp_path) as z:
        plug = await z.pair(zf.plug())
        relay = await z.pair(zf.relay())
        dimmer = await z.pair(zf.dimmer())
        assert plug["1_on_off"].spec.capability == "switch" and plug["1_on_off"].spec.device_class == "outlet"
        assert [(k, e.spec.capability, e.spec.device_class) for k, e in relay.items()] == [
            ("1_on_off", "switch", "switch"), ("2_on_off", "switch", "switch")]
        assert list(dimmer) == ["1_light"]
        assert z.state("relay", "1_on_off").value == "off" and z.state("relay", "2_on_off").value == "on"
        assert z.state("dimmer", "1_light").value == "on"
        assert z.state("dimmer", "1_light").attributes["brightness"] == 128  # level 127 of 254


async def test_a_switch_reports_and_obeys_with_the_zcl_command_and_a_refusal_names_the_status(tmp_path):
    async with paired_hub(tmp_path) as z:
        await z.pair(plug := zf.plug())
        assert plug.reporting[(1, OnOff.cluster_id)]["on_off"][:2] == (0, 900)  # ZHA's "immediate"
        assert (1, OnOff.cluster_id) in plug.bound
        plug.set(1, OnOff.cluster_id, "on_off", 1)  # pressed on the plug itself
        await zf.settle()
        assert z.state("plug", "1_on_off").value == "on"

        await z.call("plug", "1_on_off", "turn_off")
        hdr, _ = z.app.zcl_sent(OnOff.cluster_id)[-1]
        assert hdr.frame_control.is_cluster and hdr.command_id == OnOff.ServerCommandDefs.off.id
        assert plug.get(1, OnOff.cluster_id, "on_off") == 0
        assert z.state("plug", "1_on_off").value == "off"

        await z.call("plug", "1_on_off", "toggle")
        assert z.state("plug", "1_on_off").value == "on"

        plug.refuse[(OnOff.cluster_id, "off")] = foundation.Status.HARDWARE_FAILURE
        with pytest.raises(CommandRefused, match="HARDWARE_FAILURE"):
            await z.call("plug", "1_on_off", "turn_off")
        assert z.state("plug", "1_on_off").value == "on"  # not confirmed, not written


async def test_brightness_and_transition_go_as_move_to_level_with_on_off(tmp_path):
    async with paired_hub(tmp_path) as z:
        entities = await z.pair(light := zf.light())
        spec = entities["1_light"].spec
        assert spec.options == {"color_modes": ["xy", "color_temp"], "min_color_temp_kelvin": 2203,
                                "max_color_temp_kelvin": 6536}
        assert z.state("light", "1_light").value == "off"

        await z.call("light", "1_light", "turn_on", {"brightness": 128, "transition": 1.5})
        received = light.received[-1]
        assert received[1:3] == (LevelControl.cluster_id, "move_to_level_with_on_off")
        assert received[3]["level"] == 127 and received[3]["transition_time"] == 15  # tenths of a second
        state = z.state("light", "1_light")
        assert state.value == "on" and state.attributes["brightness"] == 128

        light.set(1, LevelControl.cluster_id, "current_level", 254)  # dimmed up at the wall
        await zf.settle()
        assert z.state("light", "1_light").attributes["brightness"] == 255

        await z.call("light", "1_light", "turn_on", {"brightness": 0})
        assert z.state("light", "1_light").value == "off"


async def test_colour_and_colour_temperature(tmp_path):
    async with paired_hub(tmp_path) as z:
        await z.pair(light := zf.light())
        await z.call("light", "1_light", "turn_on", {"rgb_color": [255, 0, 0]})
        ep, cluster, name, fields = light.received[-1]
        assert (cluster, name) == (Color.cluster_id, "move_to_color")
        assert (round(fields["color_x"] / 65535, 3), round(fields["color_y"] / 65535, 3)) == (0.701, 0.299)
        state = z.state("light", "1_light")
        assert state.value == "on" and state.attributes["color_mode"] == "xy"
        assert state.attributes["rgb_color"] == [255, 0, 0] and state.attributes["color_temp_kelvin"] is None

        await z.call("light", "1_light", "turn_on", {"color_temp_kelvin": 4000, "transition": 2})
        ep, cluster, name, fields = light.received[-1]
        assert (name, fields["color_temp_mireds"], fields["transition_time"]) == ("move_to_color_temp", 250, 20)
        state = z.state("light", "1_light")
        assert state.attributes["color_temp_kelvin"] == 4000 and state.attributes["rgb_color"] is None

        # Outside the light's physical range: the nearest it can do (454 mireds = 2203 K).
        await z.call("light", "1_light", "turn_on", {"color_temp_kelvin": 1500})
        assert light.received[-1][3]["color_temp_mireds"] == 454

        light.refuse[(Color.cluster_id, "move_to_color")] = foundation.Status.INVALID_VALUE
        with pytest.raises(CommandRefused, match="INVALID_VALUE"):
            await z.call("light", "1_light", "turn_on", {"rgb_color": [0, 0, 255]})


async def test_a_dimmer_refuses_colour_by_name_and_the_gate_refuses_bad_arguments(tmp_path):
    async with paired_hub(tmp_path) as z:
        await z.pair(zf.dimmer())
        with pytest.raises(CommandRefused, match="rgb_color"):
            await z.call("dimmer", "1_light", "turn_on", {"rgb_color": [1, 2, 3]})
        with pytest.raises(CommandError, match="brightness"):
            await z.call("dimmer", "1_light", "turn_on", {"brightness": 300})

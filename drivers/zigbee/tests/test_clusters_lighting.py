"""On/Off, Level and Color Control: which entity a device gets, reports, commands as ZCL frames."""

import pytest
import zigpy_fake as zf
from clusters_kit import paired_hub
from zigpy.zcl import foundation
from zigpy.zcl.clusters.general import LevelControl, OnOff
from zigpy.zcl.clusters.lighting import Color

from hub.core.commands import CommandError, CommandRefused
from hub.core.events import StateChanged


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
        # Named after the device and what each is; the endpoint only where there are several.
        assert z.state("plug", "1_power").attributes["friendly_name"] == "plug power"
        assert z.state("relay", "2_on_off").attributes["friendly_name"] == "relay on off 2"
        assert relay["2_on_off"].handle.entity_id == "switch.relay_on_off_2"


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
        assert spec.options == {"supported_color_modes": ["xy", "color_temp"], "min_color_temp_kelvin": 2203,
                                "max_color_temp_kelvin": 6536}
        assert z.state("light", "1_light").value == "off"

        await z.call("light", "1_light", "turn_on", {"brightness": 128, "transition": 1.5})
        received = light.received[-1]
        assert received[1:3] == (LevelControl.cluster_id, "move_to_level_with_on_off")
        assert received[3]["level"] == 127 and received[3]["transition_time"] == 15  # tenths of a second
        hdr, payload = z.app.zcl_sent(LevelControl.cluster_id)[-1]
        assert (hdr.command_id, payload) == (0x04, bytes([127, 15, 0]))  # the frame on the air
        state = z.state("light", "1_light")
        assert state.value == "on" and state.attributes["brightness"] == 128

        light.set(1, LevelControl.cluster_id, "current_level", 254)  # dimmed up at the wall
        await zf.settle()
        assert z.state("light", "1_light").attributes["brightness"] == 255

        await z.call("light", "1_light", "turn_on", {"brightness": 0})
        assert z.state("light", "1_light").value == "off"

        # On with a transition alone: a fade in to the last level (ZCL's On has no transition).
        await z.call("light", "1_light", "turn_on", {"transition": 0.5})
        assert light.received[-1][2:] == ("move_to_level_with_on_off", {"level": 254, "transition_time": 5})
        assert z.state("light", "1_light").value == "on"


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

        # Off, then on at a brightness in a colour: three ZCL commands, one state written.
        await z.call("light", "1_light", "turn_off")
        written = []
        z.hub.bus.subscribe(StateChanged, written.append, entity_id=z.entities["light"]["1_light"].handle.entity_id)
        await z.call("light", "1_light", "turn_on", {"brightness": 51, "rgb_color": [0, 0, 255]})
        assert [r[2] for r in light.received[-2:]] == ["move_to_level_with_on_off", "move_to_color"]
        assert [(e.new_state.value, e.new_state.attributes["brightness"], e.new_state.attributes["rgb_color"])
                for e in written] == [("on", 51, [0, 0, 255])]

        light.refuse[(Color.cluster_id, "move_to_color")] = foundation.Status.INVALID_VALUE
        with pytest.raises(CommandRefused, match="INVALID_VALUE"):
            await z.call("light", "1_light", "turn_on", {"brightness": 255, "rgb_color": [255, 0, 0]})
        # What the light did confirm (the level) shows; the refused colour does not.
        state = z.state("light", "1_light")
        assert (state.attributes["brightness"], state.attributes["rgb_color"]) == (255, [0, 0, 255])

        # A colour set elsewhere (a remote's scene) arrives as xy and shows as RGB.
        light.set(1, Color.cluster_id, "current_x", 45940)
        light.set(1, Color.cluster_id, "current_y", 19595)
        await zf.settle()
        assert z.state("light", "1_light").attributes["rgb_color"] == [255, 0, 0]


async def test_a_dimmer_refuses_colour_by_name_and_the_gate_refuses_bad_arguments(tmp_path):
    async with paired_hub(tmp_path) as z:
        await z.pair(zf.dimmer())
        with pytest.raises(CommandRefused, match="rgb_color"):
            await z.call("dimmer", "1_light", "turn_on", {"rgb_color": [1, 2, 3]})
        with pytest.raises(CommandError, match="brightness"):
            await z.call("dimmer", "1_light", "turn_on", {"brightness": 300})


async def test_after_a_restart_the_state_zigpy_remembers_is_republished_and_detach_stops_listening(tmp_path):
    """The gateway maps a known device again at start (zigpy's database holds its attributes) and
    republishes a sleepy device's state when it next speaks, without reading it."""
    from hub_zigbee.clusters import entities_for

    async with paired_hub(tmp_path) as z:
        old = (await z.pair(plug := zf.plug()))["1_on_off"]
        plug.set(1, OnOff.cluster_id, "on_off", 1)
        await zf.settle()
        handle = old.handle
        old.detach()
        plug.set(1, OnOff.cluster_id, "on_off", 0)  # reported, but nobody listens now
        await zf.settle()
        assert handle.state.value == "on"

        handle.set_unavailable()
        new = next(e for e in entities_for(z.zdev["plug"], "plug") if e.spec.key == "1_on_off")
        new.attach(handle)
        assert not handle.state.available  # attaching writes nothing: the device has not spoken
        new.republish()
        assert handle.state.available and handle.state.value == "off"  # zigpy's cache had the report

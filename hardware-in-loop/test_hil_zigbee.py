"""Zigbee against a real ``hub run``: a coordinator emulator in its own process on one end of a socat
pty pair (``simulators/znp_sim.py`` for zigpy-znp, then ``simulators/ezsp_sim.py`` for bellows), the
radio library's real serial code in the hub on the other, and virtual devices behind the emulator
answering real ZCL frames. With ``HIL_ZIGBEE_PORT`` set, the
same scenarios run against a real coordinator and real devices (README.md, "Zigbee on a Pi").

One network and one hub serve the whole module (``zigbee_network``); each scenario pairs the devices
it needs (once) and leaves the network as it found it, so any one of them also runs alone.
"""

from __future__ import annotations

import time

import pytest

from hil import available, find_entity, permit_join, state, wait_state, zigbee_devices

KINDS = ["plug1", "light1", "motion1", "contact1", "thermo1", "lock1", "cover1", "temp1"]

#: What a user sees for each kind: (capability, device_class) of entities the device must have.
EXPECTED = {
    "plug1": [("switch", None), ("sensor", "power"), ("meter", None)],
    "light1": [("light", None)],
    "motion1": [("binary_sensor", None), ("sensor", "battery")],
    "contact1": [("binary_sensor", None), ("sensor", "battery")],
    "thermo1": [("climate", None)],
    "lock1": [("lock", None)],
    "cover1": [("cover", None)],
    "temp1": [("sensor", "temperature"), ("sensor", "humidity"), ("sensor", "pressure"),
              ("sensor", "illuminance"), ("sensor", "battery")],
}


def needs_emulator(net):
    if net.sim is None:
        pytest.skip("needs the emulator's hands (press, read the relay); by hand on real devices: README.md")


def command(hub, entity_id: str, name: str, **args) -> dict:
    """A user's command through the API; answers once the device confirmed it."""
    return hub.post(f"/api/entities/{entity_id}/commands/{name}", args or None)


def settles(read, expected, timeout: float = 5, what: str = "the device"):
    """The emulator's attribute reaches the value (a light's transition takes its time)."""
    deadline = time.monotonic() + timeout
    while (value := read()) != expected:
        assert time.monotonic() < deadline, f"{what}: {value!r}, expected {expected!r}"
        time.sleep(0.05)
    return value


def test_every_kind_pairs_with_its_manufacturer_model_and_entities(zigbee_network):
    net = zigbee_network
    ieees = net.ensure(*[n for n in KINDS if net.sim is not None or n in net.paired])  # real: the ones you have
    listed = zigbee_devices(net.hub)
    for name, ieee in ieees.items():
        shown = listed[ieee]
        device = net.hub.get(f"/api/devices/{shown['device_id']}")
        assert shown["available"], shown
        if net.sim is not None:  # what the device itself says in its Basic cluster
            assert device["manufacturer"] == net.sim.get(name, "basic", "manufacturer")
            assert device["model"] == net.sim.get(name, "basic", "model")
        assert device["manufacturer"] and device["model"], device
        assert shown["manufacturer"] == device["manufacturer"] and shown["model"] == device["model"]
        assert shown["last_seen"], shown  # link quality too once it has spoken since the hub started
        if net.sim is not None:
            assert shown["lqi"] is not None, shown
        for capability, device_class in EXPECTED[name]:
            find_entity(net.hub, ieee, capability, device_class, ready=False)
        for entity in device["entities"]:
            assert entity["entity_id"] in shown["entities"] or entity["key"] in shown["entities"], (entity, shown)
    # A quirk from zha-quirks applies to the device that answers with a quirked signature (the
    # Aqara motion sensor) and the hub says so.
    if net.sim is not None:
        quirked = [d for d in listed.values() if d["ieee"] in ieees.values() and d.get("quirk")]
        assert quirked, "no device shows a zha-quirks quirk"


def test_plug_switches_and_the_relay_follows(zigbee_network):
    net = zigbee_network
    ieee = net.ensure("plug1")["plug1"]
    switch = find_entity(net.hub, ieee, "switch")
    for cmd, value, relay in (("turn_on", "on", True), ("turn_off", "off", False), ("toggle", "on", True)):
        answer = command(net.hub, switch, cmd)
        assert answer["state"]["value"] == value, answer
        if net.sim is not None:
            assert bool(net.sim.get("plug1", "on_off", "on_off")) is relay


def test_light_brightness_and_colour_temperature_reach_the_lamp(zigbee_network):
    net = zigbee_network
    ieee = net.ensure("light1")["light1"]
    light = find_entity(net.hub, ieee, "light")
    answer = command(net.hub, light, "turn_on", brightness=128, color_temp_kelvin=2700, transition=0.5)
    assert answer["state"]["value"] == "on", answer
    wait_state(net.hub, light, lambda s: s["attributes"].get("brightness") == 128, what="the light's brightness")
    if net.sim is not None:
        assert net.sim.get("light1", "on_off", "on_off")
        # brightness is 0-255, ZCL's level 0-254: the lamp's level is the brightness scaled, +-1;
        # it gets there at the end of the half-second transition
        settles(lambda: abs(net.sim.get("light1", "level", "current_level") - 128) <= 1, True, what="the lamp's level")
        settles(lambda: abs(net.sim.get("light1", "light_color", "color_temperature") - 1_000_000 // 2700) <= 1,
                True, what="the lamp's colour temperature")
    command(net.hub, light, "turn_on", rgb_color=[255, 0, 0])
    wait_state(net.hub, light, lambda s: s["attributes"].get("color_mode") in ("xy", "hs", "rgb"), what="colour mode")
    if net.sim is not None:  # red sits at the right of the CIE diagram: x well above y
        settles(lambda: net.sim.get("light1", "light_color", "current_x") > 2 * net.sim.get("light1", "light_color", "current_y"),
                True, what="the lamp's colour")
    assert command(net.hub, light, "turn_off")["state"]["value"] == "off"
    if net.sim is not None:
        settles(lambda: bool(net.sim.get("light1", "on_off", "on_off")), False, what="the lamp")


def test_lock_thermostat_and_cover_obey(zigbee_network):
    net = zigbee_network
    ieees = net.ensure("lock1", "thermo1", "cover1")
    lock = find_entity(net.hub, ieees["lock1"], "lock")
    assert command(net.hub, lock, "lock")["state"]["value"] == "locked"
    if net.sim is not None:
        assert net.sim.get("lock1", "door_lock", "lock_state") == 1  # ZCL: 1 locked
    assert command(net.hub, lock, "unlock")["state"]["value"] == "unlocked"
    if net.sim is not None:
        assert net.sim.get("lock1", "door_lock", "lock_state") == 2  # 2 unlocked

    climate = find_entity(net.hub, ieees["thermo1"], "climate")
    command(net.hub, climate, "set_hvac_mode", hvac_mode="heat")
    answer = command(net.hub, climate, "set_temperature", temperature=21.5)
    assert answer["state"]["attributes"]["target_temperature"] == 21.5, answer
    if net.sim is not None:
        assert net.sim.get("thermo1", "thermostat", "occupied_heating_setpoint") == 2150  # 0.01 °C

    cover = find_entity(net.hub, ieees["cover1"], "cover")
    command(net.hub, cover, "set_position", position=30)
    wait_state(net.hub, cover, lambda s: s["attributes"].get("position") == 30, what="the cover's position")
    if net.sim is not None:  # ZCL counts how far it is closed; the hub, as Home Assistant, how far open
        settles(lambda: net.sim.get("cover1", "window_covering", "current_position_lift_percentage"), 70,
                what="the cover motor")


def test_reports_update_the_states(zigbee_network):
    """What happens to the devices in the world reaches the hub by itself: the plug's button, its
    power draw, a lock turned by hand, a door opened, someone walking past (an Aqara sensor with its
    zha-quirks quirk). Each of these is reported at once (a report's minimum interval of 0, or a zone
    status notification); the plug's power at most every 5 s."""
    net = zigbee_network
    needs_emulator(net)
    ieees = net.ensure("plug1", "lock1", "contact1", "motion1")
    switch = find_entity(net.hub, ieees["plug1"], "switch")
    power = find_entity(net.hub, ieees["plug1"], "sensor", "power")
    net.sim.set("plug1", "on_off", "on_off", 0)
    wait_state(net.hub, switch, lambda s: s["value"] == "off", what="the plug's button (off)")
    net.sim.set("plug1", "on_off", "on_off", 1)
    wait_state(net.hub, switch, lambda s: s["value"] == "on", what="the plug's button (on)")
    wait_state(net.hub, power, lambda s: s["available"] and s["value"] and s["value"] > 0, timeout=15,
               what="the plug's power report")

    lock = find_entity(net.hub, ieees["lock1"], "lock")
    net.sim.set("lock1", "door_lock", "lock_state", 2)  # turned by hand: unlocked
    wait_state(net.hub, lock, lambda s: s["value"] == "unlocked", what="the lock turned by hand")
    net.sim.set("lock1", "door_lock", "lock_state", 1)
    wait_state(net.hub, lock, lambda s: s["value"] == "locked", what="the lock turned back")

    contact = find_entity(net.hub, ieees["contact1"], "binary_sensor")
    net.sim.set("contact1", "ias_zone", "zone_status", 1)  # alarm 1: open
    wait_state(net.hub, contact, lambda s: s["value"] == "on", what="the door to open")
    net.sim.set("contact1", "ias_zone", "zone_status", 0)
    wait_state(net.hub, contact, lambda s: s["value"] == "off", what="the door to close")

    motion = find_entity(net.hub, ieees["motion1"], "binary_sensor", "occupancy")
    net.sim.set("motion1", "occupancy", "occupancy", 1)
    wait_state(net.hub, motion, lambda s: s["value"] == "on", what="motion")


def test_a_first_automation_motion_turns_the_light_on(zigbee_network):
    """What a new user sets up first: a rule (made through the API, as the dashboard does) that turns
    the Zigbee light on when the Zigbee motion sensor sees someone."""
    net = zigbee_network
    needs_emulator(net)
    ieees = net.ensure("motion2", "light1")
    motion = find_entity(net.hub, ieees["motion2"], "binary_sensor", "occupancy")
    light = find_entity(net.hub, ieees["light1"], "light")
    command(net.hub, light, "turn_off")
    rule = {"id": "hall_light_on_motion", "alias": "Hall light on motion",
            "trigger": [{"trigger": "state", "entity_id": motion, "to": "on"}],
            "action": [{"call": "light.turn_on", "entity_id": light}]}
    status, body = net.hub.request("POST", "/api/rules", rule)
    assert status == 201, body
    try:
        net.sim.set("motion2", "occupancy", "occupancy", 1)
        wait_state(net.hub, light, lambda s: s["value"] == "on", what="the rule to turn the light on")
        settles(lambda: bool(net.sim.get("light1", "on_off", "on_off")), True, what="the lamp")
    finally:
        net.hub.request("DELETE", "/api/rules/hall_light_on_motion")
        net.sim.set("motion2", "occupancy", "occupancy", 0)


def test_a_silent_device_goes_unavailable_and_comes_back(zigbee_network):
    net = zigbee_network
    needs_emulator(net)
    ieees = net.ensure("plug2", "plug1")
    silent = find_entity(net.hub, ieees["plug2"], "switch")
    neighbour = find_entity(net.hub, ieees["plug1"], "switch")
    net.sim.call("mute", device="plug2")
    try:
        wait_state(net.hub, silent, lambda s: not s["available"], timeout=15, what="the silent plug to go unavailable")
        assert not zigbee_devices(net.hub)[ieees["plug2"]]["available"]
        assert state(net.hub, neighbour)["available"]  # the rest of the network is not affected
        command(net.hub, neighbour, "toggle")
    finally:
        net.sim.call("unmute", device="plug2")
    # Zigbee has no keep-alive and the plug has nothing to report: the hub asks an unavailable
    # mains device again every poll_interval (1 s here), so it is back without anyone touching it.
    wait_state(net.hub, silent, available, timeout=15, what="the plug to come back by the hub's poll")
    command(net.hub, silent, "turn_on")
    assert net.sim.get("plug2", "on_off", "on_off")


def test_a_device_that_leaves_and_pairs_again(zigbee_network):
    """A contact sensor reset by its owner leaves the network: its entities read ``unavailable``
    (the hub keeps it, as a device that may come back); paired again, it is the same device with
    the same entities."""
    net = zigbee_network
    needs_emulator(net)
    ieee = net.ensure("contact2")["contact2"]
    contact = find_entity(net.hub, ieee, "binary_sensor")
    net.sim.call("leave", device="contact2")
    wait_state(net.hub, contact, lambda s: not s["available"], what="the sensor that left to be unavailable")
    assert not zigbee_devices(net.hub)[ieee]["available"]
    net.paired.pop("contact2")
    assert net.ensure("contact2")["contact2"] == ieee
    assert find_entity(net.hub, ieee, "binary_sensor") == contact
    net.sim.set("contact2", "ias_zone", "zone_status", 1)
    wait_state(net.hub, contact, lambda s: s["available"] and s["value"] == "on", what="the sensor's report")


def test_the_stick_unplugged_and_replugged(zigbee_network):
    net = zigbee_network
    needs_emulator(net)
    ieees = net.ensure("plug1", "contact1")
    switch = find_entity(net.hub, ieees["plug1"], "switch")
    contact = find_entity(net.hub, ieees["contact1"], "binary_sensor")
    wait_state(net.hub, switch, available, what="the plug")

    net.line.unplug()
    try:
        wait_state(net.hub, switch, lambda s: not s["available"], timeout=15, what="the plug to go unavailable")
        wait_state(net.hub, contact, lambda s: not s["available"], what="the sensor to go unavailable")
        assert net.hub.request("GET", "/api/health", auth=False)[0] == 200
        assert net.hub.proc.poll() is None
        status, body = net.hub.request("POST", f"/api/entities/{switch}/commands/turn_on")
        assert status == 409, body  # unavailable, said so, not a 500
    finally:
        net.line.replug()
    wait_state(net.hub, switch, available, timeout=20, what="the plug after the replug")
    command(net.hub, switch, "turn_on")
    assert net.sim.get("plug1", "on_off", "on_off")
    # A sleepy sensor is back when it next speaks.
    net.sim.set("contact1", "ias_zone", "zone_status", 1)
    wait_state(net.hub, contact, lambda s: s["available"] and s["value"] == "on", what="the sensor's next report")
    net.sim.set("contact1", "ias_zone", "zone_status", 0)


def test_a_restart_keeps_the_network_and_its_devices(zigbee_network):
    """zigpy's database under the data directory brings the network and every device back: nothing
    is paired again (permit-join is closed), mains devices answer at once, sleepy ones on their
    next report."""
    net = zigbee_network
    ieees = net.ensure("plug1", "contact1")
    permit_join(net.hub, 0)
    before = zigbee_devices(net.hub)
    switch = find_entity(net.hub, ieees["plug1"], "switch")
    net.restart_hub()
    after = zigbee_devices(net.hub)
    assert set(before) <= set(after)
    for ieee in before:
        assert after[ieee]["nwk"] == before[ieee]["nwk"]
        assert after[ieee]["manufacturer"] == before[ieee]["manufacturer"]
    wait_state(net.hub, switch, available, timeout=15, what="the plug after the restart")
    command(net.hub, switch, "turn_off")
    if net.sim is not None:
        assert not net.sim.get("plug1", "on_off", "on_off")
        contact = find_entity(net.hub, ieees["contact1"], "binary_sensor")
        net.sim.set("contact1", "ias_zone", "zone_status", 1)
        wait_state(net.hub, contact, lambda s: s["available"] and s["value"] == "on",
                   what="the sleepy sensor's report after the restart")
        net.sim.set("contact1", "ias_zone", "zone_status", 0)

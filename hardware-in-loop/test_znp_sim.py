"""The ZNP coordinator emulator driven by zigpy-znp's real ControllerApplication (no hub), the
emulator in its own process on one end of a socat pty pair, zigpy-znp's serial code on the other.

What the hub's zigbee driver relies on: a network formed, kept across restarts of both sides and
restored onto a blank stick; devices joining and interviewed; ZCL commands changing the device;
reports reaching zigpy; leave.
"""

from __future__ import annotations

import asyncio
import json
import socket

import pytest
import zigpy.config as zconf
from zigpy_znp.zigbee.application import ControllerApplication

from hil import free_port

DEVICES = ["--device", "plug1=plug", "--device", "motion1=motion", "--device", "light1=light"]


class Emulator:
    """znp_sim.py on a socat pair, with its control socket and --state file."""

    def __init__(self, pty_pair, simulator, tmp_path, state_name: str = "znp-state.json") -> None:
        self.pair = pty_pair("znp")
        self.simulator = simulator
        self.state = tmp_path / state_name
        self.control_port = free_port()
        self.proc = None

    def start(self, *extra: str) -> "Emulator":
        self.proc = self.simulator("znp_sim.py", [
            "--port", str(self.pair.device_end), "--control", f"127.0.0.1:{self.control_port}",
            "--state", str(self.state), *DEVICES, *extra])
        return self

    def stop(self) -> None:
        self.proc.stop()

    def control(self, **request) -> dict:
        with socket.create_connection(("127.0.0.1", self.control_port), timeout=5) as sock:
            sock.sendall(json.dumps(request).encode() + b"\n")
            answer = sock.makefile().readline()
        return json.loads(answer)


def app_config(emulator: Emulator, tmp_path, db: str = "zigbee.db") -> dict:
    return {
        zconf.CONF_DEVICE: {zconf.CONF_DEVICE_PATH: str(emulator.pair.hub_end), zconf.CONF_DEVICE_BAUDRATE: 115200},
        zconf.CONF_DATABASE: str(tmp_path / db),
        zconf.CONF_OTA: {zconf.CONF_OTA_ENABLED: False},
        zconf.CONF_NWK: {zconf.CONF_NWK_CHANNEL: 15},
        zconf.CONF_TOPO_SCAN_ENABLED: False,
        # a pty has no DTR/RTS lines to toggle
        "znp_config": {"skip_bootloader": False},
    }


@pytest.fixture
def emulator(pty_pair, simulator, tmp_path):
    return Emulator(pty_pair, simulator, tmp_path).start()


async def start_app(config: dict) -> ControllerApplication:
    return await asyncio.wait_for(ControllerApplication.new(config, auto_form=True, start_radio=True), 30)


async def test_forms_a_network_and_keeps_it_across_restarts_of_both_sides(emulator, tmp_path):
    app = await start_app(app_config(emulator, tmp_path))
    formed = app.state.network_info
    assert app.state.node_info.model == "CC2652"
    assert formed.channel == 15
    await app.shutdown()

    emulator.stop()  # the stick keeps its NV memory (--state) across the emulator's restart
    emulator.start()
    app = await start_app(app_config(emulator, tmp_path))
    kept = app.state.network_info
    events = Events()
    app.add_listener(events)
    await app.permit(60)
    emulator.control(op="join", device="plug1")
    plug = await until(lambda: events.initialized.get("SIM-PLUG-1"))
    await plug.endpoints[1].electrical_measurement.configure_reporting("active_power", 0, 300, 1)
    await app.shutdown()
    assert (kept.pan_id, kept.extended_pan_id, kept.channel, kept.network_key.key) == \
        (formed.pan_id, formed.extended_pan_id, formed.channel, formed.network_key.key)

    emulator.stop()  # the devices themselves keep what they were configured with
    emulator.start()
    app = await start_app(app_config(emulator, tmp_path))
    try:
        plug = next(d for d in app.devices.values() if d.model == "SIM-PLUG-1")
        assert emulator.control(op="devices")["devices"][0]["reporting"][0]["attribute"] == 0x050B
        await plug.endpoints[1].on_off.on()
        power = plug.endpoints[1].electrical_measurement
        await until(lambda: power.get("active_power") == 60, what="the power report after a restart")
    finally:
        await app.shutdown()


async def test_a_new_stick_gets_the_backup_and_the_paired_devices_keep_working(pty_pair, simulator, tmp_path):
    first = Emulator(pty_pair, simulator, tmp_path, "first.json").start()
    app = await start_app(app_config(first, tmp_path))
    events = Events()
    app.add_listener(events)
    await app.permit(60)
    first.control(op="join", device="plug1")
    first.control(op="join", device="motion1")
    await until(lambda: len(events.initialized) == 2)
    backup = await app.backups.create_backup(load_devices=True)
    ieee = {d["name"]: d["ieee"] for d in first.control(op="devices")["devices"]}
    await app.shutdown()
    first.stop()
    assert ieee["motion1"] in {str(child) for child in backup.network_info.children}  # an end device
    assert ieee["plug1"] in {str(key.partner_ieee) for key in backup.network_info.key_table}  # a router

    # the stick swapped for a blank one; zigpy's database (with its backups) kept: restored on start
    blank = Emulator(pty_pair, simulator, tmp_path, "blank.json").start()
    assert blank.control(op="stats")["joined"] == 0
    app = await start_app(app_config(blank, tmp_path))
    try:
        restored = app.state.network_info
        assert (restored.pan_id, restored.extended_pan_id, restored.channel, restored.network_key.key) == (
            backup.network_info.pan_id, backup.network_info.extended_pan_id, backup.network_info.channel,
            backup.network_info.network_key.key)
        assert blank.control(op="stats")["joined"] == 2  # both devices are still on the network
        plug = next(d for d in app.devices.values() if d.model == "SIM-PLUG-1")
        await plug.endpoints[1].on_off.on()
        assert blank.control(op="get", device="plug1", cluster="on_off", attribute="on_off")["value"] is True
    finally:
        await app.shutdown()


class Events:
    """zigpy's application and cluster listener callbacks, collected."""

    def __init__(self) -> None:
        self.initialized: dict = {}
        self.left: list = []

    def device_initialized(self, device) -> None:
        self.initialized[device.model] = device

    def device_left(self, device) -> None:
        self.left.append(device.ieee)


async def until(predicate, timeout: float = 10, what: str = "condition"):
    async with asyncio.timeout(timeout):
        while not (value := predicate()):
            await asyncio.sleep(0.02)
    return value


async def test_devices_join_are_interviewed_and_answer_commands_reads_and_reporting(emulator, tmp_path):
    import zhaquirks

    zhaquirks.setup()  # as the hub's driver does, so the Aqara signature gets its quirk
    app = await start_app(app_config(emulator, tmp_path))
    events = Events()
    app.add_listener(events)
    try:
        assert emulator.control(op="join", device="plug1") == {"ok": False, "error": "permit join is closed"}
        assert emulator.control(op="join_when_open", device="motion1")["ok"]
        await app.permit(60)
        assert emulator.control(op="join", device="plug1")["ok"]
        plug = await until(lambda: events.initialized.get("SIM-PLUG-1"))
        motion = await until(lambda: events.initialized.get("lumi.sensor_motion.aq2"))
        assert (plug.manufacturer, motion.manufacturer) == ("ruffsim", "LUMI")
        assert type(motion).__name__ == "MotionAQ2"

        on_off = plug.endpoints[1].on_off
        assert (await on_off.read_attributes(["on_off"]))[0] == {"on_off": False}
        await on_off.on()
        assert emulator.control(op="get", device="plug1", cluster="on_off", attribute="on_off")["value"] is True
        await on_off.off()
        assert emulator.control(op="get", device="plug1", cluster="on_off", attribute="on_off")["value"] is False

        power = plug.endpoints[1].electrical_measurement
        await power.bind()
        await power.configure_reporting("active_power", 0, 300, 1)
        devices = emulator.control(op="devices")["devices"]
        assert [r["attribute"] for r in devices[0]["reporting"]] == [0x050B]
        await on_off.on()  # the plug's 60 W load now draws power: reported
        await until(lambda: power.get("active_power") == 60, what="the power report")

        emulator.control(op="mute", device="plug1")
        with pytest.raises(Exception):
            await on_off.off()
        emulator.control(op="unmute", device="plug1")
        await on_off.off()

        assert emulator.control(op="leave", device="motion1")["ok"]
        await until(lambda: motion.ieee in events.left, what="the leave indication")
        assert emulator.control(op="stats")["joined"] == 1
    finally:
        await app.shutdown()


async def test_the_stick_unplugged_and_replugged_keeps_network_and_devices(emulator, tmp_path):
    app = await start_app(app_config(emulator, tmp_path))
    formed = app.state.network_info
    events = Events()
    app.add_listener(events)
    await app.permit(60)
    emulator.control(op="join", device="light1")
    await until(lambda: events.initialized.get("SIM-LIGHT-1"))
    await app.shutdown()

    emulator.pair.unplug()
    emulator.pair.replug()
    app = await start_app(app_config(emulator, tmp_path))
    try:
        assert app.state.network_info.pan_id == formed.pan_id
        light = next(d for d in app.devices.values() if d.model == "SIM-LIGHT-1")
        await light.endpoints[1].level.move_to_level_with_on_off(100, 2)  # a 0.2 s transition
        await until(lambda: emulator.control(op="get", device="light1", cluster="level",
                                             attribute="current_level")["value"] == 100, what="the level")
        assert emulator.control(op="get", device="light1", cluster="on_off", attribute="on_off")["value"] is True
    finally:
        await app.shutdown()


async def test_a_fleet_joins_when_permitted_and_reports_every_period(pty_pair, simulator, tmp_path):
    emulator = Emulator(pty_pair, simulator, tmp_path).start("--fleet", "3=motion", "--fleet-period", "0.5")
    app = await start_app(app_config(emulator, tmp_path))
    events = Events()
    app.add_listener(events)
    try:
        await app.permit(60)  # nobody asked them: fleet devices join on their own once permitted
        await until(lambda: sum(d["joined"] for d in emulator.control(op="devices")["devices"]
                                if d["name"].startswith("motion-")) == 3)
        await until(lambda: len([d for d in app.devices.values() if d.model == "lumi.sensor_motion.aq2"]) == 3)
        sensor = next(d for d in app.devices.values() if d.model == "lumi.sensor_motion.aq2")
        occupancy = sensor.endpoints[1].occupancy
        seen = set()
        await until(lambda: seen.add(occupancy.get("occupancy")) or {0, 1} <= seen, what="occupancy reports")
        assert emulator.control(op="get", device="nobody", cluster="on_off", attribute="on_off") == \
            {"ok": False, "error": "no device named 'nobody'"}
    finally:
        await app.shutdown()

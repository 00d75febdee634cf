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
    await app.shutdown()
    assert (kept.pan_id, kept.extended_pan_id, kept.channel, kept.network_key.key) == \
        (formed.pan_id, formed.extended_pan_id, formed.channel, formed.network_key.key)


async def test_a_backup_restores_onto_a_blank_stick(pty_pair, simulator, tmp_path):
    first = Emulator(pty_pair, simulator, tmp_path, "first.json").start()
    app = await start_app(app_config(first, tmp_path, "first.db"))
    backup = await app.backups.create_backup(load_devices=True)
    await app.shutdown()
    first.stop()

    blank = Emulator(pty_pair, simulator, tmp_path, "blank.json").start()
    app = ControllerApplication(app_config(blank, tmp_path, "second.db"))
    await app.connect()
    try:
        await app.backups.restore_backup(backup)
        await app.load_network_info()
        restored = app.state.network_info
    finally:
        await app.disconnect()
    assert (restored.pan_id, restored.extended_pan_id, restored.channel, restored.network_key.key) == (
        backup.network_info.pan_id, backup.network_info.extended_pan_id, backup.network_info.channel,
        backup.network_info.network_key.key)

"""The EZSP emulator driven by bellows' real ControllerApplication over a socat pty pair.

bellows is what the hub's ``radio_type: ezsp`` runs; here it runs without the hub, so a failure
points at the emulator (or at bellows' expectations of a Silicon Labs stick), not at the driver.
The emulator is its own process (``simulators/ezsp_sim.py``), as a real stick is its own chip.
"""

from __future__ import annotations

import asyncio
import json
import socket
import stat
from pathlib import Path

import pytest

from hil import Simulator, free_port

pytest.importorskip("bellows")

import zigpy.config as zconf  # noqa: E402
import zigpy.exceptions  # noqa: E402
import zigpy.types as zt  # noqa: E402
from bellows.zigbee.application import ControllerApplication  # noqa: E402


def app_config(port: Path, db: Path) -> dict:
    return {
        zconf.CONF_DEVICE: {zconf.CONF_DEVICE_PATH: str(port), zconf.CONF_DEVICE_BAUDRATE: 115200,
                            zconf.CONF_DEVICE_FLOW_CONTROL: None},
        zconf.CONF_DATABASE: str(db),
        "use_thread": False,
        zconf.CONF_OTA: {zconf.CONF_OTA_ENABLED: False},  # never reach the internet
        zconf.CONF_NWK_BACKUP_ENABLED: False,
        zconf.CONF_TOPO_SCAN_ENABLED: False,
    }


class Stick:
    """One emulated stick: a socat pair and the emulator process on its device end."""

    def __init__(self, pty_pair, simulator, folder: Path, name: str = "ezsp", state: bool = True,
                 eui64: str = "00:0b:57:ff:fe:5a:0e:01", devices: tuple[str, ...] = (),
                 extra: tuple[str, ...] = ()):
        self.pair = pty_pair(name)
        self.control_port = free_port()
        self.args = ["--port", str(self.pair.device_end), "--eui64", eui64,
                     "--baudrate", "0",  # unpaced: these tests are about protocol, not timing
                     "--control", f"127.0.0.1:{self.control_port}"]
        for device in devices:
            self.args += ["--device", device]
        self.args += extra
        self.state = folder / f"{name}-nvram.json" if state else None
        if self.state is not None:
            self.args += ["--state", str(self.state)]
        self.sim: Simulator = simulator("ezsp_sim.py", self.args)
        self.port = self.pair.hub_end

    def restart(self, simulator) -> None:
        self.sim.stop()
        self.sim = simulator("ezsp_sim.py", self.args)

    def control(self, **request) -> dict:
        with socket.create_connection(("127.0.0.1", self.control_port), timeout=5) as s:
            s.sendall((json.dumps(request) + "\n").encode())
            return json.loads(s.makefile().readline())


async def start(stick: Stick, db: Path, auto_form: bool = True) -> ControllerApplication:
    return await ControllerApplication.new(app_config(stick.port, db), auto_form=auto_form)


async def until(predicate, what: str, timeout: float = 5.0):
    """Polls the running loop (zigpy works in it) until ``predicate()`` is truthy."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not (value := predicate()):
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"{what} not reached within {timeout} s")
        await asyncio.sleep(0.02)
    return value


async def paired(app: ControllerApplication, stick: Stick, name: str):
    """Permit join, the device joins, zigpy interviews it: the zigpy device, model read."""
    await app.permit(60)
    answer = stick.control(op="join", device=name)
    assert answer["ok"], answer
    ieee = zt.EUI64.convert(next(d["ieee"] for d in stick.control(op="devices")["devices"]
                                 if d["name"] == name))
    return await until(lambda: (d := app.devices.get(ieee)) and d.is_initialized and d.model and d,
                       f"{name} interviewed")


def network(app: ControllerApplication) -> tuple:
    info = app.state.network_info
    return (info.pan_id, info.extended_pan_id, info.channel, info.network_key.key)


async def test_bellows_forms_a_network_and_restarts_keeping_it(tmp_path, pty_pair, simulator):
    stick = Stick(pty_pair, simulator, tmp_path)
    app = await start(stick, tmp_path / "zigbee.db")
    formed = network(app)
    assert app.state.node_info.manufacturer == "ruffsim"
    assert app.state.node_info.version.startswith("7.4.3.0")
    assert app._ezsp.ezsp_version == 13
    await app.shutdown()

    # the stick's NVRAM outlives the emulator process; bellows finds the network, forms none
    stick.restart(simulator)
    app = await start(stick, tmp_path / "other.db", auto_form=False)
    assert network(app) == formed
    await app.shutdown()
    assert stat.S_IMODE(stick.state.stat().st_mode) == 0o600  # it holds the network key


async def test_a_blank_stick_takes_the_backup_of_the_old_one(tmp_path, pty_pair, simulator):
    old = Stick(pty_pair, simulator, tmp_path, "old")
    app = await start(old, tmp_path / "zigbee.db")
    formed = network(app)
    backup = await app.backups.create_backup(load_devices=True)
    await app.shutdown()

    new = Stick(pty_pair, simulator, tmp_path, "new", eui64="00:0b:57:ff:fe:11:22:33")
    app = ControllerApplication(app_config(new.port, tmp_path / "new.db"))
    await app.connect()
    await app.backups.restore_backup(backup)
    await app.shutdown()

    app = await start(new, tmp_path / "new.db", auto_form=False)
    assert network(app) == formed
    # the new stick took the old one's IEEE address too, so devices find their coordinator
    assert app.state.node_info.ieee == backup.node_info.ieee
    await app.shutdown()


async def test_broken_frames_are_nakked_and_sent_again_both_ways(tmp_path, pty_pair, simulator):
    stick = Stick(pty_pair, simulator, tmp_path, state=False)
    assert stick.control(op="corrupt", count=3)["ok"]  # bellows NAKs, the stick sends again
    assert stick.control(op="reject", count=3)["ok"]  # the stick NAKs, bellows sends again
    app = await start(stick, tmp_path / "zigbee.db")
    await app.shutdown()
    link = stick.control(op="stats")["ash"]
    assert link["retransmitted"] >= 3 and link["naks_sent"] >= 3
    assert stick.control(op="reject", count="all") == {
        "ok": False, "error": "count wants an integer 0-100, got 'all'"}


async def test_the_stick_unplugged_and_replugged_serves_again(tmp_path, pty_pair, simulator):
    stick = Stick(pty_pair, simulator, tmp_path)
    app = await start(stick, tmp_path / "zigbee.db")
    formed = network(app)
    await app.shutdown()
    stick.pair.unplug()
    await asyncio.sleep(0.3)
    stick.pair.replug()
    app = await start(stick, tmp_path / "zigbee.db", auto_form=False)
    assert network(app) == formed
    await app.shutdown()


async def test_a_plug_pairs_switches_and_reports(tmp_path, pty_pair, simulator):
    stick = Stick(pty_pair, simulator, tmp_path, devices=("plug1=plug",))
    app = await start(stick, tmp_path / "zigbee.db")
    try:
        plug = await paired(app, stick, "plug1")
        assert (plug.manufacturer, plug.model) == ("ruffsim", "SIM-PLUG-1")
        on_off = plug.endpoints[1].on_off

        # a command: sendUnicast, messageSentHandler, the plug's default response
        await on_off.on()
        assert stick.control(op="get", device="plug1", cluster="on_off", attribute="on_off")["value"] is True
        await on_off.read_attributes(["on_off"])
        assert on_off.get("on_off") == 1

        # reporting configured at pairing, then the physical world flips the relay
        await on_off.bind()
        [record] = await on_off.configure_reporting("on_off", 0, 300, 1)
        assert record.status == 0
        assert stick.control(op="set", device="plug1", cluster="on_off", attribute="on_off",
                             value=False)["ok"]
        await until(lambda: on_off.get("on_off") == 0, "the on_off report")  # it was 1 after on()
    finally:
        await app.shutdown()


async def test_pairing_needs_permit_join_and_a_device_can_leave(tmp_path, pty_pair, simulator):
    stick = Stick(pty_pair, simulator, tmp_path, devices=("plug1=plug", "contact1=contact"))
    app = await start(stick, tmp_path / "zigbee.db")
    left = []
    app.add_listener(type("Listener", (), {"device_left": lambda self, dev: left.append(dev.ieee)})())
    try:
        refused = stick.control(op="join", device="contact1")
        assert refused == {"ok": False, "error": "permit join is closed"}
        stick.control(op="join_when_open", device="contact1")  # the button pressed first
        contact = await paired(app, stick, "plug1") and await until(
            lambda: next((d for d in app.devices.values() if d.model == "SIM-CONTACT-1"), None),
            "the waiting contact sensor paired once permit join opened")
        assert stick.control(op="leave", device="contact1")["ok"]
        await until(lambda: contact.ieee in left, "zigpy told of the leave")
    finally:
        await app.shutdown()


async def test_a_silent_device_fails_delivery_and_paired_devices_survive_a_restart(
        tmp_path, pty_pair, simulator):
    stick = Stick(pty_pair, simulator, tmp_path, devices=("plug1=plug",))
    app = await start(stick, tmp_path / "zigbee.db")
    plug = await paired(app, stick, "plug1")
    stick.control(op="mute", device="plug1")
    with pytest.raises(zigpy.exceptions.DeliveryError):
        await plug.endpoints[1].on_off.on()
    stick.control(op="unmute", device="plug1")
    await app.shutdown()

    # the emulator restarts from --state, zigpy from its database: no pairing again
    stick.restart(simulator)
    app = await start(stick, tmp_path / "zigbee.db", auto_form=False)
    try:
        plug = app.get_device(ieee=plug.ieee)
        await plug.endpoints[1].on_off.on()
        assert stick.control(op="get", device="plug1", cluster="on_off", attribute="on_off")["value"] is True
    finally:
        await app.shutdown()


async def test_commands_are_answered_while_devices_keep_reporting(tmp_path, pty_pair, simulator):
    """Callbacks (the fleet's reports) interleave with the answers to bellows' commands on the one
    ASH link; every command still gets its own answer."""
    stick = Stick(pty_pair, simulator, tmp_path, devices=("plug1=plug",),
                  extra=("--fleet", "10=motion", "--fleet-period", "0.1"))  # 100 reports a second
    app = await start(stick, tmp_path / "zigbee.db")
    try:
        plug = await paired(app, stick, "plug1")  # the fleet joins with it
        on_off = plug.endpoints[1].on_off
        reports = stick.control(op="stats")["frames_out"]
        for expected in [True, False] * 10:
            await asyncio.wait_for((on_off.on if expected else on_off.off)(), 2)
            relay = stick.control(op="get", device="plug1", cluster="on_off", attribute="on_off")
            assert relay["value"] is expected
        assert stick.control(op="stats")["frames_out"] > reports + 20  # reports flowed meanwhile
    finally:
        await app.shutdown()

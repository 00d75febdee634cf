"""Helpers of the hardware-in-the-loop scenarios: socat pty pairs, simulator processes, real hubs.

Everything started here is a real process and is ended by the fixture that started it, whatever the
test did to it (paused, killed, unplugged). Tests that need socat fail, not skip, when ``CI`` is set.

Real hardware instead of simulators: set ``HIL_MODBUS_PORT`` (an RS-485 adapter with an SDM120 and/or a
relay board on it), ``HIL_SERIAL_PORT`` (a USB serial device speaking the serial simulator's protocol) or
``HIL_ZIGBEE_PORT`` (a Zigbee coordinator, ``HIL_ZIGBEE_RADIO`` znp or ezsp, with real devices paired by
hand); see README.md in this folder. Scenarios that need to control the peer (mute it, unplug it) run only
against the simulators.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
SIMULATORS = HERE / "simulators"
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from tests.hubproc import HubProcess, free_port, run_cli  # noqa: E402,F401  (re-exported for the tests)

REAL_MODBUS_PORT = os.environ.get("HIL_MODBUS_PORT")
REAL_SERIAL_PORT = os.environ.get("HIL_SERIAL_PORT")
REAL_ZIGBEE_PORT = os.environ.get("HIL_ZIGBEE_PORT")


def require_socat() -> str:
    path = shutil.which("socat")
    if path is None:
        if os.environ.get("CI"):
            pytest.fail("socat is not installed; CI must have it (.ci/run installs it)")
        pytest.skip("socat is not installed (apt-get install socat)")
    return path


def wait_until(predicate, timeout: float, what: str, interval: float = 0.02):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"{what} not reached within {timeout} s")


def _end(proc: subprocess.Popen) -> None:
    if proc.poll() is not None:
        return
    try:
        proc.send_signal(signal.SIGCONT)  # a paused process cannot act on SIGTERM
        proc.terminate()
        proc.wait(5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


class SocatPair:
    """Two pty ends joined by socat, reached through stable symlinks like /dev/serial/by-id names.

    ``unplug`` ends socat: the ptys vanish, the hub's open port fails, the links disappear, as when a
    USB adapter is pulled. ``replug`` starts socat again under the same link names (new /dev/pts
    numbers behind them, as a real replug gets a new ttyUSBn)."""

    def __init__(self, folder: Path, name: str) -> None:
        self.hub_end = folder / f"{name}-hub"
        self.device_end = folder / f"{name}-device"
        self.proc: subprocess.Popen | None = None

    def plug(self) -> "SocatPair":
        socat = require_socat()
        self.proc = subprocess.Popen(
            [socat, f"pty,raw,echo=0,link={self.hub_end}", f"pty,raw,echo=0,link={self.device_end}"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        wait_until(lambda: self.hub_end.exists() and self.device_end.exists(), 5, "socat's pty links")
        return self

    def unplug(self) -> None:
        if self.proc is not None:
            _end(self.proc)
        for link in (self.hub_end, self.device_end):
            link.unlink(missing_ok=True)

    replug = plug


class Simulator:
    """A simulator script as its own process; ``ready`` on its stdout means it serves."""

    def __init__(self, script: str, args: list[str], folder: Path) -> None:
        self.control = folder / f"control-{free_port()}.json"
        self.args = [sys.executable, str(SIMULATORS / script), *args]
        if script == "modbus_sim.py":
            self.args += ["--control", str(self.control)]
        self.proc: subprocess.Popen | None = None
        self.output: list[str] = []

    def start(self, timeout: float = 15) -> "Simulator":
        self.proc = subprocess.Popen(self.args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        ready = threading.Event()

        def pump() -> None:  # a thread, so the pipe never fills up and blocks the simulator
            for line in self.proc.stdout:
                self.output.append(line)
                if line.strip() == "ready":
                    ready.set()

        threading.Thread(target=pump, daemon=True).start()
        if not ready.wait(timeout):
            _end(self.proc)
            raise RuntimeError(f"simulator {self.args} did not get ready:\n{''.join(self.output)}")
        return self

    def mute(self, *ids: int) -> None:
        """Those device ids stop answering (the others on the line go on)."""
        self.control.write_text(json.dumps({"muted": list(ids)}))
        self.proc.send_signal(signal.SIGUSR1)

    def pause(self) -> None:
        self.proc.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        self.proc.send_signal(signal.SIGCONT)

    def stop(self) -> None:
        if self.proc is not None:
            _end(self.proc)


def state(hub: HubProcess, entity_id: str) -> dict:
    status, body = hub.request("GET", f"/api/states/{entity_id}")
    assert status == 200, (status, body)
    return body


def wait_state(hub: HubProcess, entity_id: str, predicate, timeout: float = 10, what: str = "") -> dict:
    return hub.wait_for(lambda: (s := state(hub, entity_id)) and predicate(s) and s, timeout,
                        what or f"{entity_id} to match")


def available(s: dict) -> bool:
    return s["available"] and s["value"] is not None


class ZigbeeSim(Simulator):
    """A Zigbee coordinator emulator (``znp_sim.py``, or ``ezsp_sim.py``: same options, same control
    protocol) with virtual devices behind it, on the device end of a pty pair.

    ``call`` speaks the emulator's control protocol (one JSON object a line over TCP on loopback): what
    a user's hands do to real devices (press the pairing button, trigger the motion sensor, pull a
    battery) and what a probe on the real relay would read (``get``)."""

    def __init__(self, folder: Path, port: Path, devices: dict[str, str], *, script: str = "znp_sim.py",
                 baudrate: int = 115200, fleet: str | None = None, state: Path | None = None) -> None:
        self.control_port = free_port()
        self.state_file = state or folder / f"{Path(script).stem}-{self.control_port}-state.json"
        args = ["--port", str(port), "--baudrate", str(baudrate), "--control", f"127.0.0.1:{self.control_port}",
                "--state", str(self.state_file)]
        for name, kind in devices.items():
            args += ["--device", f"{name}={kind}"]
        if fleet:
            args += ["--fleet", fleet]
        super().__init__(script, args, folder)

    def call(self, op: str, **fields) -> dict:
        """One control request; an ``{"ok": false}`` answer raises, naming the request."""
        import socket

        with socket.create_connection(("127.0.0.1", self.control_port), timeout=10) as conn:
            conn.sendall((json.dumps({"op": op, **fields}) + "\n").encode())
            answer = b""
            while not answer.endswith(b"\n"):
                chunk = conn.recv(65536)
                if not chunk:
                    break
                answer += chunk
        reply = json.loads(answer)
        if not reply.get("ok"):
            raise AssertionError(f"emulator refused {op} {fields}: {reply.get('error')}")
        return reply

    def get(self, device: str, cluster: str, attribute: str, endpoint: int = 1):
        return self.call("get", device=device, endpoint=endpoint, cluster=cluster, attribute=attribute)["value"]

    def set(self, device: str, cluster: str, attribute: str, value, endpoint: int = 1) -> None:
        self.call("set", device=device, endpoint=endpoint, cluster=cluster, attribute=attribute, value=value)

    def devices(self) -> dict[str, dict]:
        return {d["name"]: d for d in self.call("devices")["devices"]}


def zigbee_config(port: str, *, radio_type: str = "znp", baudrate: int = 115200, mains: float = 3,
                  battery: float = 3600, check_interval: float = 0.25, poll_interval: float = 1,
                  reconnect_max: float = 0.5) -> str:
    """A ``configuration.yaml`` with ``zigbee:`` and a short availability time for mains devices, so a
    silent plug goes unavailable within seconds instead of hours. Battery devices keep a long one:
    a sleepy sensor speaks only when something changes (or at its reporting interval)."""
    return (f"zigbee:\n  radio_type: {radio_type}\n  port: \"{port}\"\n  baudrate: {baudrate}\n"
            f"  availability: {{mains: {mains}, battery: {battery}, check_interval: {check_interval}}}\n"
            f"  poll_interval: {poll_interval}\n  reconnect_max: {reconnect_max}\n")


def zigbee_devices(hub: HubProcess) -> dict[str, dict]:
    """The hub's Zigbee devices by IEEE address, as ``hub zigbee devices`` shows them."""
    return {d["ieee"]: d for d in hub.get("/api/plugins/zigbee/devices")["devices"]}


def permit_join(hub: HubProcess, seconds: int = 60) -> dict:
    return hub.post("/api/plugins/zigbee/permit_join", {"duration": seconds})


def entities(hub: HubProcess, ieee: str) -> list[dict]:
    """The device's entities as the API shows them (key, entity_id, capability, device_class, state)."""
    return hub.get(f"/api/devices/{zigbee_devices(hub)[ieee]['device_id']}")["entities"]


def find_entity(hub: HubProcess, ieee: str, capability: str, device_class: str | None = None, *,
                ready: bool = True) -> str:
    """The entity id of the device's first entity of that capability (and device class): the tests
    find entities the way a user reads them off the device page, not by a key they would guess.
    ``ready``: wait until it has a state (a new device's entities are unavailable until their
    first read or report)."""
    found = [e["entity_id"] for e in entities(hub, ieee)
             if e["capability"] == capability and (device_class is None or e.get("device_class") == device_class)]
    assert found, f"no {capability} {device_class or ''} entity on zigbee:{ieee}: {entities(hub, ieee)}"
    if ready:
        wait_state(hub, found[0], available, what=f"{found[0]} to have its first state")
    return found[0]


def pair(hub: HubProcess, sim: ZigbeeSim, *names: str, timeout: float = 20) -> dict[str, dict]:
    """Press each device's pairing button, open permit-join as a user does, and wait until every one
    is interviewed and shown with its entities. Returns the hub's view of them by name."""
    known = sim.devices()
    for name in names:
        sim.call("join_when_open", device=name)
    permit_join(hub, 60)
    ieees = {name: known[name]["ieee"] for name in names}

    def shown():  # joined (again, for one that left), interviewed, available with its entities
        devices, joined = zigbee_devices(hub), sim.devices()
        ready = {name: devices[ieee] for name, ieee in ieees.items()
                 if joined[name]["joined"] and ieee in devices and devices[ieee]["entities"]
                 and devices[ieee]["available"]}
        return len(ready) == len(names) and ready

    paired = hub.wait_for(shown, timeout, f"{', '.join(names)} to be paired with their entities")
    permit_join(hub, 0)  # as a careful user does once the devices are in
    return paired


class ZigbeeNetwork:
    """One emulated coordinator with its virtual devices on a pty pair, and a ``hub run`` with
    ``zigbee:`` configured on the other end; shared by the scenarios that do not disturb each other.

    ``ensure`` pairs devices the first time a scenario needs them, so each scenario can run alone
    (``pytest -k``, or on its own xdist worker) and the shared ones pair each device once."""

    def __init__(self, folder: Path, devices: dict[str, str], *, script: str = "znp_sim.py",
                 radio_type: str = "znp", baudrate: int = 115200, fleet: str | None = None,
                 **config) -> None:
        self.folder = folder
        self.line = SocatPair(folder, "zigbee")
        self.sim = ZigbeeSim(folder, self.line.device_end, devices, script=script, baudrate=baudrate, fleet=fleet)
        self.data = folder / "hub"
        self.config = zigbee_config(str(self.line.hub_end), radio_type=radio_type, baudrate=baudrate, **config)
        self.hub: HubProcess | None = None
        self.paired: dict[str, str] = {}  # name -> ieee
        self.hubs: list[HubProcess] = []

    def start(self) -> "ZigbeeNetwork":
        self.line.plug()
        self.sim.start()
        self.data.mkdir(exist_ok=True)
        (self.data / "configuration.yaml").write_text(self.config)
        return self.start_hub()

    def start_hub(self) -> "ZigbeeNetwork":
        self.hub = HubProcess(self.data, extra_env={"PYTHONUNBUFFERED": "1"})
        self.hubs.append(self.hub)
        self.hub.start(timeout=30)
        self.hub.wait_for(self.connected, 30, "the hub's Zigbee radio to be connected")
        return self

    def connected(self) -> bool:
        status, body = self.hub.request("GET", "/api/plugins/zigbee/devices")
        return status == 200 and body["connected"]

    def restart_hub(self) -> None:
        self.hub.stop()
        self.start_hub()

    def ensure(self, *names: str) -> dict[str, str]:
        """IEEE addresses of those devices, pairing the ones not paired yet."""
        missing = [n for n in names if n not in self.paired]
        if missing:
            shown = pair(self.hub, self.sim, *missing)
            self.paired.update({name: device["ieee"] for name, device in shown.items()})
        return {name: self.paired[name] for name in names}

    def stop(self) -> None:
        for hub in self.hubs:
            try:
                hub.stop()
            except Exception:  # noqa: BLE001 - the others must stop too
                pass
        self.sim.stop()
        self.line.unplug()


class RealZigbeeNetwork(ZigbeeNetwork):
    """A real coordinator on ``HIL_ZIGBEE_PORT`` and real devices, paired beforehand by hand with a hub
    whose data directory is ``HIL_ZIGBEE_DATA`` (its ``configuration.yaml`` names the port);
    ``HIL_ZIGBEE_DEVICES`` maps the scenarios' names to their IEEE addresses
    (``plug1=00:12:4b:...,light1=...``). There is no emulator to press buttons or read relays:
    scenarios that need one are skipped, and README.md says how to do them by hand."""

    def __init__(self, port: str) -> None:
        data = os.environ.get("HIL_ZIGBEE_DATA")
        if not data:
            pytest.fail("HIL_ZIGBEE_PORT needs HIL_ZIGBEE_DATA: the data directory the devices were paired with")
        self.data = Path(data).expanduser()
        self.port = port
        self.sim = None
        self.hub = None
        self.hubs = []
        pairs = [item.split("=", 1) for item in os.environ.get("HIL_ZIGBEE_DEVICES", "").split(",") if "=" in item]
        self.paired = {name.strip(): ieee.strip().lower() for name, ieee in pairs}

    def start(self) -> "RealZigbeeNetwork":
        return self.start_hub()

    def ensure(self, *names: str) -> dict[str, str]:
        missing = [n for n in names if n not in self.paired]
        if missing:
            pytest.skip(f"no real device named {', '.join(missing)} in HIL_ZIGBEE_DEVICES")
        return {name: self.paired[name] for name in names}

    def stop(self) -> None:
        for hub in self.hubs:
            try:
                hub.stop()
            except Exception:  # noqa: BLE001
                pass

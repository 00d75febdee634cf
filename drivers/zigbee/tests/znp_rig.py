"""The rig of the driver's process tests: the ZNP emulator (hardware-in-loop/simulators/znp_sim.py)
in its own process on one end of a socat pty pair, a real ``hub run`` on the other, and a client of
the emulator's control protocol (one JSON object per line over TCP)."""

from __future__ import annotations

import json
import socket
from pathlib import Path

from zigbee_testing import zigbee_yaml
from hil import HubProcess, Simulator, SocatPair, free_port, wait_until  # noqa: F401


class Control:
    def __init__(self, port: int) -> None:
        self.port = port

    def __call__(self, op: str, **fields) -> dict:
        with socket.create_connection(("127.0.0.1", self.port), timeout=10) as sock:
            sock.sendall((json.dumps({"op": op, **fields}) + "\n").encode())
            data = b""
            while not data.endswith(b"\n"):
                chunk = sock.recv(65536)
                if not chunk:
                    break
                data += chunk
        return json.loads(data)

    def device(self, name: str) -> dict:
        return next(d for d in self("devices")["devices"] if d["name"] == name)


class Rig:
    """One emulated stick with its devices, and the hubs started against it."""

    def __init__(self, folder: Path, devices: dict[str, str]) -> None:
        self.folder = folder
        self.pair = SocatPair(folder, "znp")
        self.state = folder / "znp-state.json"
        self.devices = devices
        self.sim: Simulator | None = None
        self.control: Control | None = None
        self.hubs: list[HubProcess] = []

    def start_sim(self, state: Path | None = None) -> "Rig":
        port = free_port()
        args = ["--port", str(self.pair.device_end), "--control", f"127.0.0.1:{port}",
                "--state", str(state or self.state)]
        for name, kind in self.devices.items():
            args += ["--device", f"{name}={kind}"]
        self.sim = Simulator("znp_sim.py", args, self.folder).start()
        self.control = Control(port)
        return self

    def stop_sim(self) -> None:
        if self.sim is not None:
            self.sim.stop()
            self.sim = None

    def hub(self, data: Path, extra: str = "") -> HubProcess:
        data.mkdir(exist_ok=True)
        (data / "configuration.yaml").write_text(zigbee_yaml(str(self.pair.hub_end), extra=extra))
        hub = HubProcess(data, extra_env={"PYTHONUNBUFFERED": "1"})
        self.hubs.append(hub)
        return hub.start()

    def close(self) -> None:
        for hub in self.hubs:
            try:
                hub.stop()
            except Exception:  # noqa: BLE001 - the next one is stopped all the same
                pass
        self.stop_sim()
        self.pair.unplug()


def connected(hub: HubProcess) -> bool:
    return hub.get("/api/plugins/zigbee/devices")["connected"]


def zigbee_devices(hub: HubProcess) -> list[dict]:
    return hub.get("/api/plugins/zigbee/devices")["devices"]


def entity_state(hub: HubProcess, entity_id: str) -> dict | None:
    status, body = hub.request("GET", f"/api/states/{entity_id}")
    return body if status == 200 else None

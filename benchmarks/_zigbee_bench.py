"""Shared by the Zigbee benchmarks: the coordinator emulator in its own process on one end of a socat
pty pair, a real ``hub run`` with ``zigbee:`` on the other, and the user's path to it (HTTP with the
owner token on a kept-alive connection, as a dashboard or a script would)."""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

from _hubproc import free_port, hub_executable, stop, wait_healthy
from _modbus_bench import pty_pair

REPO = Path(__file__).resolve().parents[1]
SIMULATORS = REPO / "hardware-in-loop" / "simulators"


class Emulator:
    """``znp_sim.py`` with its control protocol (one JSON object a line over loopback TCP)."""

    def __init__(self, port: Path, folder: Path, devices: dict[str, str], *, baudrate: int = 115200,
                 fleet: str | None = None, core: int | None = None, script: str = "znp_sim.py") -> None:
        self.control_port = free_port()
        args = [sys.executable, str(SIMULATORS / script), "--port", str(port), "--baudrate", str(baudrate),
                "--control", f"127.0.0.1:{self.control_port}", "--state", str(folder / "emulator-state.json")]
        for name, kind in devices.items():
            args += ["--device", f"{name}={kind}"]
        if fleet:
            args += ["--fleet", fleet]
        pin = (lambda: os.sched_setaffinity(0, {core})) if core is not None else None
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, preexec_fn=pin)
        self.output: list[str] = []
        ready = threading.Event()

        def pump() -> None:
            for line in self.proc.stdout:
                self.output.append(line)
                if line.strip() == "ready":
                    ready.set()

        threading.Thread(target=pump, daemon=True).start()
        if not ready.wait(30):
            self.stop()
            raise RuntimeError("emulator did not get ready:\n" + "".join(self.output))

    def call(self, op: str, **fields) -> dict:
        with socket.create_connection(("127.0.0.1", self.control_port), timeout=30) as conn:
            conn.sendall((json.dumps({"op": op, **fields}) + "\n").encode())
            data = b""
            while not data.endswith(b"\n"):
                chunk = conn.recv(1 << 20)
                if not chunk:
                    break
                data += chunk
        reply = json.loads(data)
        if not reply.get("ok"):
            raise RuntimeError(f"emulator refused {op} {fields}: {reply.get('error')}")
        return reply

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


class Api:
    """The hub's API on one kept-alive connection."""

    def __init__(self, port: int, token: str) -> None:
        self.port = port
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        self.headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}

    def request(self, method: str, path: str, body=None):
        try:
            self.conn.request(method, path, None if body is None else json.dumps(body), self.headers)
            resp = self.conn.getresponse()
        except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
            # the server closed the kept-alive connection as it idled (uvicorn's keep-alive timeout)
            self.conn.close()
            self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
            self.conn.request(method, path, None if body is None else json.dumps(body), self.headers)
            resp = self.conn.getresponse()
        data = resp.read()
        if resp.status >= 400:
            raise RuntimeError(f"{method} {path}: {resp.status} {data[:300]!r}")
        return json.loads(data or b"null") if resp.headers.get_content_type() == "application/json" else data.decode()

    def devices(self) -> dict[str, dict]:
        return {d["ieee"]: d for d in self.request("GET", "/api/plugins/zigbee/devices")["devices"]}

    def entities(self, ieee: str) -> list[dict]:
        return self.request("GET", f"/api/devices/{self.devices()[ieee]['device_id']}")["entities"]


def cpu_seconds(pid: int) -> float:
    """The process's user + system CPU time (all its threads), from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def config(port: Path, baudrate: int, radio: str = "znp", **availability) -> str:
    mains = availability.get("mains", 7200)
    battery = availability.get("battery", 21600)
    return (f"zigbee:\n  radio_type: {radio}\n  port: \"{port}\"\n  baudrate: {baudrate}\n"
            f"  availability: {{mains: {mains}, battery: {battery}}}\n")


@contextlib.contextmanager
def network(folder: Path, devices: dict[str, str], *, baudrate: int = 115200, fleet: str | None = None,
            hub_core: int | None = None, emulator_core: int | None = None, radio: str = "znp"):
    """socat + emulator + ``hub run`` (the hub pinned to ``hub_core`` when given); yields
    ``(emulator, api, hub_process)`` once the zigbee plugin's radio is connected. ``radio``: znp
    (zigpy-znp against ``znp_sim.py``) or ezsp (bellows against ``ezsp_sim.py``)."""
    with pty_pair(folder) as (hub_end, device_end):
        emulator = Emulator(device_end, folder, devices, baudrate=baudrate, fleet=fleet, core=emulator_core,
                            script=f"{radio}_sim.py")
        data = folder / "hub"
        data.mkdir()
        (data / "configuration.yaml").write_text(config(hub_end, baudrate, radio))
        port = free_port()
        pin = (lambda: os.sched_setaffinity(0, {hub_core})) if hub_core is not None else None
        log = open(folder / "hub.log", "ab")
        hub = subprocess.Popen([*hub_executable(), "run", "--data", str(data), "--port", str(port)],
                               stdout=log, stderr=subprocess.STDOUT, preexec_fn=pin)
        try:
            wait_healthy(hub, port, timeout=60)
            api = Api(port, (data / "owner-token").read_text().strip())
            deadline = time.monotonic() + 60
            while True:
                try:  # the plugin serves its API while the stick still starts
                    if api.request("GET", "/api/plugins/zigbee/devices")["connected"]:
                        break
                    time.sleep(0.1)
                except (RuntimeError, OSError):
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.1)
            yield emulator, api, hub
        except BaseException:
            sys.stderr.write((folder / "hub.log").read_text(errors="replace")[-4000:])
            sys.stderr.write(f"\nemulator:\n{''.join(emulator.output[-30:])}\n")
            raise
        finally:
            stop(hub)
            emulator.stop()


def pair(emulator: Emulator, api: Api, names: list[str], timeout: float = 600) -> dict[str, float]:
    """Press each device's button, open permit-join, wait for each to be shown with its entities.
    Returns the seconds from permit-join to each device's entities."""
    known = {d["name"]: d["ieee"] for d in emulator.call("devices")["devices"]}
    for name in names:
        emulator.call("join_when_open", device=name)
    started = time.perf_counter()
    api.request("POST", "/api/plugins/zigbee/permit_join", {"duration": 254})
    shown: dict[str, float] = {}
    deadline = started + timeout
    while len(shown) < len(names):
        if time.perf_counter() > deadline:
            raise RuntimeError(f"only {len(shown)} of {len(names)} devices paired within {timeout} s")
        devices = api.devices()
        now = time.perf_counter() - started
        for name in names:
            if name not in shown and devices.get(known[name], {}).get("entities"):
                shown[name] = now
        time.sleep(0.01)
    api.request("POST", "/api/plugins/zigbee/permit_join", {"duration": 0})
    return shown


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]

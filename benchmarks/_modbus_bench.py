"""Shared by the Modbus benchmarks: the 200-register map over 3 device ids, the simulator process,
and one poll cycle driven through the driver's real bus and device classes."""

from __future__ import annotations

import contextlib
import subprocess
import sys
import time
from pathlib import Path

from hub_modbus.bus import ModbusBus
from hub_modbus.config import DeviceConfig
from hub_modbus.device import ModbusDevice
from hub_modbus.plan import split

REPO = Path(__file__).resolve().parents[1]
SIMULATOR = REPO / "hardware-in-loop" / "simulators" / "modbus_sim.py"
UNITS = (1, 2, 3)


def register_map(unit: int) -> list[dict]:
    """67/67/66 entities of one register each: holding registers in groups of ten with small holes
    (as real maps have), and every other input register."""
    n_input = 17 if unit < 3 else 16
    entities = [{"key": f"h{i}", "register": "holding", "address": i + 3 * (i // 10)} for i in range(50)]
    entities += [{"key": f"i{i}", "register": "input", "address": 100 + 2 * i, "data_type": "int16"}
                 for i in range(n_input)]
    return entities


class Handle:
    """Stands in for the hub's entity handle: the benchmark measures the bus, not the state machine."""

    state = None

    def set(self, value, **attributes):
        pass

    def set_unavailable(self):
        pass


def devices(bus: ModbusBus, per_entity: bool = False) -> list[ModbusDevice]:
    out = []
    for unit in UNITS:
        device = ModbusDevice(DeviceConfig(name=f"d{unit}", connection="line", device_id=unit,
                                           entities=register_map(unit)), bus)
        device.handles = {key: Handle() for key in device.entities}
        if per_entity:  # what other hubs do: one request per entity
            for group in device.groups:
                group.blocks = [part for block in group.blocks for part in split(block)]
        out.append(device)
    return out


async def poll_cycle(devs: list[ModbusDevice]) -> float:
    start = time.perf_counter()
    for device in devs:
        for group in device.groups:
            await device.poll(group)
            assert device.health.available, device.health.last_error
    return time.perf_counter() - start


@contextlib.contextmanager
def simulator(args: list[str]):
    proc = subprocess.Popen([sys.executable, str(SIMULATOR), *args, *sum((["--device", f"{u}=generic"] for u in UNITS), [])],
                            stdout=subprocess.PIPE, text=True)
    try:
        for line in proc.stdout:
            if line.strip() == "ready":
                break
        else:
            raise RuntimeError("simulator did not start")
        yield proc
    finally:
        proc.terminate()
        proc.wait(5)


@contextlib.contextmanager
def pty_pair(folder: Path):
    hub_end, device_end = folder / "bench-hub", folder / "bench-device"
    proc = subprocess.Popen(["socat", f"pty,raw,echo=0,link={hub_end}", f"pty,raw,echo=0,link={device_end}"])
    try:
        deadline = time.monotonic() + 5
        while not (hub_end.exists() and device_end.exists()):
            if time.monotonic() > deadline:
                raise RuntimeError("socat did not make the pty pair")
            time.sleep(0.01)
        yield hub_end, device_end
    finally:
        proc.terminate()
        proc.wait(5)

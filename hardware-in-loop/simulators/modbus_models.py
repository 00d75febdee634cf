"""Register maps and behaviour of the simulated Modbus devices.

The maps follow the same public documents as the driver's profiles (Eastron SDM120/SDM630 input
registers, the common relay board's coils and inputs), written out independently here so that a
mistake in a profile shows up as a wrong reading instead of being mirrored by the simulator.
Values move like a real meter's: voltage wanders around 230 V, the load follows a slow cycle with
noise, and energy integrates power, so it only ever rises.
"""

from __future__ import annotations

import math
import random
import struct
import time

from pymodbus.simulator import DataType, SimData, SimDevice

#: Eastron input-register addresses (zero-based) of the quantities the meter model produces.
SDM120 = {"voltage": 0x00, "current": 0x06, "active_power": 0x0C, "apparent_power": 0x12,
          "reactive_power": 0x18, "power_factor": 0x1E, "phase_angle": 0x24, "frequency": 0x46,
          "import_energy": 0x48, "export_energy": 0x4A, "import_reactive_energy": 0x4C,
          "export_reactive_energy": 0x4E, "total_energy": 0x156, "total_reactive_energy": 0x158}
SDM630 = {"l1_voltage": 0x00, "l2_voltage": 0x02, "l3_voltage": 0x04, "l1_current": 0x06, "l2_current": 0x08,
          "l3_current": 0x0A, "l1_power": 0x0C, "l2_power": 0x0E, "l3_power": 0x10, "l1_power_factor": 0x1E,
          "l2_power_factor": 0x20, "l3_power_factor": 0x22, "total_power": 0x34, "total_apparent_power": 0x38,
          "total_reactive_power": 0x3C, "total_power_factor": 0x3E, "frequency": 0x46, "import_energy": 0x48,
          "export_energy": 0x4A, "neutral_current": 0xE0, "total_energy": 0x156}
#: Generic device: registers that never exist, to exercise "illegal data address" handling.
GENERIC_HOLE = range(200, 210)
GENERIC_SIZE = 500


def _float_words(value: float) -> tuple[int, int]:
    hi, lo = struct.unpack(">HH", struct.pack(">f", value))
    return hi, lo


def _none(address: int = 0) -> list[SimData]:
    return [SimData(address, count=1, datatype=DataType.INVALID)]


def _no_bits() -> list[SimData]:
    # pymodbus wants a bit block for coils and inputs even on a device that has none: put one far
    # away (register 4000 = bit 64000), so bit 0 and its neighbours are illegal addresses as on a meter.
    return [SimData(4000, count=1, values=0, datatype=DataType.BITS)]


class Meter:
    """A household load on one or three phases; ``speed`` makes simulated time run faster so a test
    sees energy rise within seconds."""

    def __init__(self, phases: int, speed: float, seed: int) -> None:
        self.phases = phases
        self.speed = speed
        self.rng = random.Random(seed)
        self.energy = 12.5 + seed  # kWh already on the meter when it was installed
        self.reactive = 1.25
        self.t = time.monotonic()

    def quantities(self) -> dict[str, float]:
        now = time.monotonic()
        dt, self.t = (now - self.t) * self.speed, now
        out: dict[str, float] = {}
        total_p = total_s = 0.0
        for n in range(1, self.phases + 1):
            volts = 230 + 1.5 * math.sin(now / 13 + n) + self.rng.gauss(0, 0.2)
            amps = max(0.2, 4 + 2.5 * math.sin(now / 20 + 2 * n) + self.rng.gauss(0, 0.1))
            pf = 0.95 + 0.03 * math.sin(now / 31 + n)
            p, s = volts * amps * pf, volts * amps
            total_p, total_s = total_p + p, total_s + s
            prefix = "" if self.phases == 1 else f"l{n}_"
            out[f"{prefix}voltage"], out[f"{prefix}current"] = volts, amps
            out[f"{prefix}power" if self.phases > 1 else "active_power"] = p
            out[f"{prefix}power_factor"] = pf
        total_q = math.sqrt(max(total_s**2 - total_p**2, 0.0))
        self.energy += total_p * dt / 3.6e6
        self.reactive += total_q * dt / 3.6e6
        out.update(frequency=50 + self.rng.gauss(0, 0.01), import_energy=self.energy, export_energy=0.0,
                   total_energy=self.energy, import_reactive_energy=self.reactive, export_reactive_energy=0.0,
                   total_reactive_energy=self.reactive)
        if self.phases == 1:
            out.update(apparent_power=total_s, reactive_power=total_q, phase_angle=math.degrees(math.acos(out["power_factor"])))
        else:
            out.update(total_power=total_p, total_apparent_power=total_s, total_reactive_power=total_q,
                       total_power_factor=total_p / total_s, neutral_current=abs(self.rng.gauss(0.3, 0.05)))
        return out


def meter_device(unit: int, phases: int, speed: float) -> SimDevice:
    addresses = SDM120 if phases == 1 else SDM630
    meter = Meter(phases, speed, seed=unit)
    ir = [SimData(0, count=0x50, values=0, datatype=DataType.REGISTERS),
          SimData(0x156, count=4, values=0, datatype=DataType.REGISTERS)]
    if phases == 3:
        ir.insert(1, SimData(0xE0, count=2, values=0, datatype=DataType.REGISTERS))

    async def action(function_code, start, address, count, registers, values):
        if function_code == 4:
            for name, value in meter.quantities().items():
                at = addresses[name] - start
                registers[at], registers[at + 1] = _float_words(value)
        return None

    return SimDevice(unit, (_no_bits(), _no_bits(), _none(), ir), action=action)


def relay_device(unit: int, channels: int) -> SimDevice:
    """Relays on coils 0..channels-1, inputs on discrete inputs (input 1 opens and closes like a door
    every 4 s), the board's address in holding 0x4000 as on the real boards."""

    async def action(function_code, start, address, count, registers, values):
        if function_code == 2:
            registers[0] = (registers[0] & ~1) | (int(time.monotonic() / 4) & 1)
        return None

    return SimDevice(unit, (
        [SimData(0, count=1, values=0, datatype=DataType.BITS)],
        [SimData(0, count=1, values=0, datatype=DataType.BITS)],
        [SimData(0x4000, count=1, values=unit, datatype=DataType.REGISTERS)],
        _none(),
    ), action=action)


def generic_device(unit: int) -> SimDevice:
    """500 holding and 500 input registers, 64 coils and inputs: the benchmark's and the tests'
    free-form device. Holding register n starts at n; input registers follow a slow sine; input
    registers 200-209 do not exist (illegal data address)."""

    async def action(function_code, start, address, count, registers, values):
        if function_code == 4:
            phase = time.monotonic() / 10
            for i in range(address, address + count):
                if i - start < len(registers):
                    registers[i - start] = int(1000 + 500 * math.sin(phase + i / 7)) & 0xFFFF
        return None

    return SimDevice(unit, (
        [SimData(0, count=4, values=0, datatype=DataType.BITS)],
        [SimData(0, count=4, values=0x5555, datatype=DataType.BITS)],
        [SimData(0, values=list(range(GENERIC_SIZE)), datatype=DataType.REGISTERS)],
        [SimData(0, count=GENERIC_HOLE.start, values=0, datatype=DataType.REGISTERS),
         SimData(GENERIC_HOLE.stop, count=GENERIC_SIZE - GENERIC_HOLE.stop, values=0, datatype=DataType.REGISTERS)],
    ), action=action)


KINDS = {
    "sdm120": lambda unit, speed: meter_device(unit, 1, speed),
    "sdm630": lambda unit, speed: meter_device(unit, 3, speed),
    "relay4": lambda unit, speed: relay_device(unit, 4),
    "relay8": lambda unit, speed: relay_device(unit, 8),
    "generic": lambda unit, speed: generic_device(unit),
}

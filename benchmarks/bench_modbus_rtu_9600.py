"""A full poll cycle of the 200-register map over RTU at 9,600 baud, versus the wire time.

Issue #4's target: at most 1.3 times the wire time. The simulator sits on one end of a socat pty pair
and paces its replies at 9,600 baud (a pty itself moves bytes at memory speed); the driver polls from
the other end. Wire time is the physical limit: every byte the cycle sent and received, at 10 bits a
character (8N1), plus the mandatory 3.5-character silence after each request and each reply.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
from pathlib import Path

from _modbus_bench import devices, poll_cycle, pty_pair, simulator
from hub_modbus.bus import ModbusBus
from hub_modbus.config import RtuConnection

BAUD = 9600


async def measure(port: Path, cycles: int, per_entity_cycles: int) -> dict:
    link = RtuConnection(type="rtu", port=str(port), baudrate=BAUD, timeout=2, retries=0)
    bus = ModbusBus("line", link)
    char = link.char_time
    try:
        out = {}
        for name, per_entity, n in (("coalesced", False, cycles), ("per_entity", True, per_entity_cycles)):
            if not n:
                continue
            devs = devices(bus, per_entity=per_entity)
            await poll_cycle(devs)  # warm-up: open the port
            times, wires = [], []
            for _ in range(n):
                s = bus.stats
                before = (s.requests, s.tx_bytes, s.rx_bytes)
                times.append(await poll_cycle(devs))
                requests, tx, rx = s.requests - before[0], s.tx_bytes - before[1], s.rx_bytes - before[2]
                wires.append((tx + rx) * char + requests * 2 * 3.5 * char)
            times.sort()
            median, wire = times[len(times) // 2], wires[0]
            out[name] = {"requests": requests, "bytes": tx + rx, "cycle_s": round(median, 4),
                         "wire_s": round(wire, 4), "ratio": round(median / wire, 3)}
        return {"benchmark": "modbus_rtu_9600", "baud": BAUD, "registers": 200, "device_ids": 3, "cycles": cycles,
                **{f"{k}_{m}": v for k, d in out.items() for m, v in d.items()}, "target_ratio": 1.3}
    finally:
        bus.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cycles", type=int, default=5)
    parser.add_argument("--per-entity-cycles", type=int, default=1, help="0 skips the slow baseline")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder, pty_pair(Path(folder)) as (hub_end, device_end):
        with simulator(["rtu", "--port", str(device_end), "--baudrate", str(BAUD)]):
            print(json.dumps(asyncio.run(measure(hub_end, args.cycles, args.per_entity_cycles))))


if __name__ == "__main__":
    main()

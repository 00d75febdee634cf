"""Requests per poll cycle for a 200-register map over 3 device ids: coalesced versus one per entity.

Issue #4's target: at least 10 times fewer. Both cycles run through the driver's real bus against the
pymodbus simulator over TCP, and the figure is the number of frames the bus actually sent.
"""

from __future__ import annotations

import argparse
import asyncio
import json

from _modbus_bench import devices, poll_cycle, simulator
from hub_modbus.bus import ModbusBus
from hub_modbus.config import TcpConnection
from hub.net.ports import free_port  # below the ephemeral range: no close-then-bind race


async def measure(port: int) -> dict:
    bus = ModbusBus("line", TcpConnection(type="tcp", host="127.0.0.1", port=port, timeout=1, retries=0))
    try:
        counts = {}
        for name, per_entity in (("coalesced", False), ("per_entity", True)):
            devs = devices(bus, per_entity=per_entity)
            await poll_cycle(devs)  # warm-up: connect
            before = bus.stats.requests
            await poll_cycle(devs)
            counts[name] = bus.stats.requests - before
        entities = sum(len(d.entities) for d in devs)
        return {"benchmark": "modbus_requests", "registers": 200, "entities": entities, "device_ids": 3,
                "requests_coalesced": counts["coalesced"], "requests_per_entity": counts["per_entity"],
                "ratio": round(counts["per_entity"] / counts["coalesced"], 1), "target_ratio": 10}
    finally:
        bus.close()


def main() -> None:
    argparse.ArgumentParser(description=__doc__.splitlines()[0]).parse_args()
    port = free_port()
    with simulator(["tcp", "--port", str(port)]):
        print(json.dumps(asyncio.run(measure(port))))


if __name__ == "__main__":
    main()

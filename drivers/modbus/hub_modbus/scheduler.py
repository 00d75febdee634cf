"""The poll loop of one connection.

One task per connection, not per device: the devices on one RS-485 line cannot be read in parallel
anyway, and a single loop that always serves the most overdue group keeps a slow or dead device from
starving its neighbours (a dead one costs one timeout per cycle, never more, see
:meth:`hub_modbus.device.ModbusDevice.poll`). Commands do not wait for the loop: they take the bus
lock between two polls.
"""

from __future__ import annotations

import asyncio
import time

from hub_modbus.device import ModbusDevice, PollGroup


def next_group(devices: list[ModbusDevice]) -> tuple[float, ModbusDevice, PollGroup] | None:
    best = None
    for device in devices:
        for group in device.groups:
            if best is None or group.next_due < best[0]:
                best = (group.next_due, device, group)
    return best


async def run_connection(devices: list[ModbusDevice], clock=time.monotonic) -> None:
    # Every group is due now. Left at the dataclass's 0.0, the first cycle counted as "fallen behind
    # since the clock's epoch" below, so it was scheduled again at once: each start read everything twice.
    start = clock()
    for device in devices:
        for group in device.groups:
            group.next_due = start
    while True:
        found = next_group(devices)
        if found is None:
            return
        due, device, group = found
        wait = due - clock()
        if wait > 0:
            await asyncio.sleep(wait)
        await device.poll(group)
        # Next due one interval after this one was, unless we fell behind: then from now, so a long
        # outage is not followed by a burst of catch-up reads.
        group.next_due = max(due + group.interval, clock())

"""The dashboard benchmarks' driver (and the overview tests'), loaded with ``--plugins-dir``.

``entities`` sensors spread over ten devices, each with a first value at start-up, so the overview
has that many states to show; a switch whose device is offline (its state ``unavailable``), which the
tests look for; a gate (cover) and its bell (button); and ``POST /api/plugins/bench_web_driver/run`` writing new values at a steady rate,
round-robin over the sensors, for the page to keep up with.
"""

from __future__ import annotations

import asyncio
import time

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from hub import hookimpl
from hub.devices import Device, EntitySpec

DEVICES = 10


class BenchConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    entities: int = Field(1000, ge=1, le=10_000)


class Run(BaseModel):
    model_config = ConfigDict(extra="forbid")
    rate: float = Field(gt=0, le=100_000, description="Writes per second.")
    seconds: float = Field(gt=0, le=600)


@hookimpl
def hub_config_schema() -> type[BenchConfig]:
    return BenchConfig


@hookimpl
def hub_discover(hub) -> None:
    count = hub.config.entities
    ids = []
    for d in range(DEVICES):
        specs = [EntitySpec(key=f"s{i}", capability="sensor", device_class="power", unit="W", object_id=f"web_{i}")
                 for i in range(d, count, DEVICES)]
        if not specs:
            continue
        handles = hub.add_device(Device(id=f"web-{d}", name=f"Bench device {d}", manufacturer="Bench", model="W1"), specs)
        for handle in handles.values():
            handle.set(0.0)
            ids.append(handle.entity_id)
    offline = hub.add_device(Device(id="web-offline", name="Offline device", manufacturer="Bench", model="W0"),
                             [EntitySpec(key="plug", capability="switch", name="Offline plug", object_id="web_offline_plug")])
    offline["plug"].set("off")
    offline["plug"].set_unavailable()  # its device went away: the page must say so, controls off
    gate = hub.add_device(Device(id="web-gate", name="Gate", manufacturer="Bench", model="G1"),
                          [EntitySpec(key="gate", capability="cover", name="Gate", object_id="web_gate"),
                           EntitySpec(key="bell", capability="button", name="Bell", object_id="web_bell")])
    gate["gate"].set("closed", position=0)
    gate["bell"].set(None)
    hub.data["ids"] = ids
    hub.data["next"] = 1.0


@hookimpl
async def hub_handle_command(hub, entity, command, args):
    if entity.key == "gate":
        position = {"open": 100, "close": 0}.get(command, getattr(args, "position", None))
        if command == "stop":
            entity.set("stopped")
        else:
            entity.set("open" if position else "closed", position=position)
    elif entity.key == "bell":
        entity.set(time.time())
    else:
        entity.set("on" if command == "turn_on" else "off")


async def _run(hub, rate: float, seconds: float) -> dict:
    """Writes spread evenly: at every tick (1 ms at most) as many as the rate owes by then."""
    ids = hub.data["ids"]
    base = hub.data["next"]
    total = int(rate * seconds)
    hub.data["next"] = base + total
    loop = asyncio.get_running_loop()
    start = loop.time()
    done = 0
    while done < total:
        owed = min(total, int((loop.time() - start) * rate) + 1)
        while done < owed:
            hub.entity(ids[done % len(ids)]).set(base + done)
            done += 1
        await asyncio.sleep(0.001)
    return {"writes": done, "seconds": loop.time() - start}


@hookimpl
def hub_api_routes(hub) -> APIRouter:
    router = APIRouter()

    @router.post("/run")
    async def run(body: Run) -> dict:
        return await _run(hub, body.rate, body.seconds)

    return router

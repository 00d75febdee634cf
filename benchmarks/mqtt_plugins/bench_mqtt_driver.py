"""The MQTT benchmarks' driver, loaded into a real ``hub run`` with ``--plugins-dir``.

Sensors whose values it writes at a steady offered rate (``POST /api/plugins/bench_mqtt_driver/run``),
as a polling driver with many devices would, and a switch whose command handler returns the wall
time at which the driver got the command, so the command benchmark can time the MQTT path up to the
driver call itself.
"""

from __future__ import annotations

import asyncio
import gc
import time

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from hub import hookimpl
from hub.devices import Device, EntitySpec


class BenchConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    entities: int = Field(1000, ge=1)
    freeze_gc: bool = Field(False, description="gc.freeze() before a run: what the hub doing it at start-up would give.")


class Run(BaseModel):
    model_config = ConfigDict(extra="forbid")
    rate: float = Field(gt=0, description="Writes per second offered.")
    seconds: float = Field(gt=0)


@hookimpl
def hub_config_schema() -> type[BenchConfig]:
    return BenchConfig


@hookimpl
def hub_discover(hub) -> None:
    specs = [EntitySpec(key=f"p{i}", capability="sensor", device_class="power", unit="W", object_id=f"mqb_{i}")
             for i in range(hub.config.entities)]
    specs.append(EntitySpec(key="switch", capability="switch", name="Bench switch", object_id="mqb_switch"))
    handles = hub.add_device(Device(id="bench-mqtt", name="Bench MQTT"), specs)
    hub.data["ids"] = [h.entity_id for k, h in handles.items() if k != "switch"]
    hub.data["next"] = 1.0
    for key, handle in handles.items():
        handle.set("off" if key == "switch" else 0.0)


@hookimpl
async def hub_handle_command(hub, entity, command, args):
    called = time.time()
    entity.set("on" if command == "turn_on" else "off")
    return {"called": called}


def _gc_pauses() -> tuple[list, callable]:
    """Record the garbage collector's pauses over 5 ms, which show as latency spikes."""
    pauses: list = []
    started: dict = {}

    def watch(phase, info):
        if phase == "start":
            started["t"] = time.perf_counter()
        elif "t" in started:
            took = (time.perf_counter() - started.pop("t")) * 1000
            if took > 5:
                pauses.append([info["generation"], round(took, 1)])

    gc.callbacks.append(watch)
    return pauses, lambda: gc.callbacks.remove(watch)


async def _run(hub, rate: float, seconds: float) -> dict:
    """Writes spread evenly: at every tick (1 ms at most) as many as the rate owes by then."""
    ids = hub.data["ids"]
    count = len(ids)
    base = hub.data["next"]
    total = int(rate * seconds)
    hub.data["next"] = base + total
    loop = asyncio.get_running_loop()
    if hub.config.freeze_gc:
        gc.collect()
        gc.freeze()
    pauses, stop_watching = _gc_pauses()
    start = loop.time()
    done = 0
    lag = 0.0
    while done < total:
        owed = min(total, int((loop.time() - start) * rate) + 1)
        while done < owed:
            hub.entity(ids[done % count]).set(base + done)
            done += 1
        before = loop.time()
        await asyncio.sleep(0.001)
        lag = max(lag, loop.time() - before - 0.001)
    stop_watching()
    return {"writes": done, "seconds": loop.time() - start, "gc_pauses_ms": pauses,
            "longest_loop_lag_ms": round(lag * 1000, 1)}


@hookimpl
def hub_api_routes(hub) -> APIRouter:
    router = APIRouter()

    @router.post("/run")
    async def run(body: Run) -> dict:
        return await _run(hub, body.rate, body.seconds)

    return router

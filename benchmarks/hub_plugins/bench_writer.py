"""The state-write benchmark's driver, loaded into a real ``hub run`` with ``--plugins-dir``.

It does what a polling driver does, and nothing else: writes each of its sensors' values through
``hub.entity(entity_id).set(value)``, a batch at a time, yielding to the event loop between
batches as a driver awaiting its next frame would. ``POST /api/plugins/bench_writer/run`` runs one
timed burst inside the hub's event loop, so the figure includes everything a write sets off there:
the recorder's batch and its commit, the rule engine's trigger index, the API's WebSocket
subscribers.
"""

from __future__ import annotations

import asyncio
import cProfile
import io
import pstats
import time

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from hub import hookimpl
from hub.devices import Device, EntitySpec


class BenchConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    entities: int = Field(1000, ge=1)


class Burst(BaseModel):
    model_config = ConfigDict(extra="forbid")
    writes: int = Field(ge=1)
    batch: int = Field(1000, ge=1, description="Writes between two yields to the event loop.")
    profile: bool = False


@hookimpl
def hub_config_schema() -> type[BenchConfig]:
    return BenchConfig


@hookimpl
def hub_discover(hub) -> None:
    specs = [
        EntitySpec(key=f"p{i}", capability="sensor", device_class="power", unit="W", object_id=f"bench_{i}")
        for i in range(hub.config.entities)
    ]
    handles = hub.add_device(Device(id="bench-writer", name="Bench writer"), specs)
    hub.data["ids"] = [h.entity_id for h in handles.values()]
    hub.data["next"] = 1.0
    for handle in handles.values():
        handle.set(0.0)


async def _burst(hub, writes: int, batch: int) -> dict:
    ids = hub.data["ids"]
    count = len(ids)
    base = hub.data["next"]
    hub.data["next"] = base + writes  # every write of every burst changes the value
    wall, cpu = time.perf_counter(), time.process_time()
    done = 0
    while done < writes:
        end = min(done + batch, writes)
        for n in range(done, end):
            hub.entity(ids[n % count]).set(base + n)
        done = end
        await asyncio.sleep(0)
    loop = time.perf_counter() - wall
    # The recorder commits what the writes queued within a second anyway; waiting for it here puts
    # that commit inside the measured time, where it belongs.
    await hub._hub.recorder.flush()
    return {"writes": writes, "loop_s": loop, "wall_s": time.perf_counter() - wall, "cpu_s": time.process_time() - cpu}


@hookimpl
def hub_api_routes(hub) -> APIRouter:
    router = APIRouter()

    @router.post("/run")
    async def run(burst: Burst) -> dict:
        profiler = cProfile.Profile() if burst.profile else None
        if profiler is not None:
            profiler.enable()  # the loop's thread: the writes, the bus, and every task run between batches
        answer = await _burst(hub, burst.writes, burst.batch)
        if profiler is not None:
            profiler.disable()
            out = io.StringIO()
            pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(25)
            answer["profile"] = out.getvalue()
        return answer

    return router

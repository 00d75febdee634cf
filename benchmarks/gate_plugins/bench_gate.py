"""The signed-command benchmark's probe, loaded into a real ``hub run`` with ``--plugins-dir``.

``POST /api/plugins/bench_gate/run`` takes signed commands as JSON (what the signed-commands route
receives) and runs each through the whole signed path inside the hub's event loop, one at a time:
parse, find the device, the light node's checks (signature, window, counter committed to
identity.db), the command registry, the demo plug's driver, the CommandCalled event (recorder,
rules, WebSocket subscribers). It times each from the parsed JSON body to the driver's return.
``POST .../stamps`` gives the monotonic times at which the driver switched the plug since the last
call, for the HTTP measurement.
"""

from __future__ import annotations

import cProfile
import gc
import io
import pstats
import time

from fastapi import APIRouter, Body

from hub import hookimpl
from hub.crypto.statements import Signed


@hookimpl
def hub_api_routes(hub):
    router = APIRouter()
    # When the driver applies a command: the demo plug's switch changes state inside the driver
    # call. CLOCK_MONOTONIC is one clock for every process here, so the client's send time and
    # this stamp measure the HTTP path from the client's send to the driver call.
    stamps: list[int] = []
    hub.bus.subscribe("state_changed", lambda event: stamps.append(time.monotonic_ns()), entity_id="switch.smart_plug")

    @router.post("/stamps")
    async def take_stamps() -> list[int]:
        out = list(stamps)
        stamps.clear()
        return out

    @router.post("/run")
    async def run(commands: list = Body(...), device: str = "demo:smart_plug", profile: bool = False,
                  freeze: bool = False) -> dict:
        identity = hub.service("identity")
        if freeze:  # an experiment: the hub's start-up heap out of the collector's way
            gc.freeze()
        lat = []
        profiler = cProfile.Profile() if profile else None
        if profiler:
            profiler.enable()
        pauses = []

        def on_gc(phase, info, _t=[0]):
            if phase == "start":
                _t[0] = time.perf_counter_ns()
            else:
                pauses.append((info["generation"], time.perf_counter_ns() - _t[0]))

        gc.callbacks.append(on_gc)
        started = time.perf_counter()
        for item in commands:
            t0 = time.perf_counter_ns()
            await identity.signed_call(Signed.from_json(item), device_id=device)
            lat.append(time.perf_counter_ns() - t0)
        total = time.perf_counter() - started
        gc.callbacks.remove(on_gc)
        out = {"total_s": total, "lat_ns": lat, "gc_ns": pauses}
        if profiler:
            profiler.disable()
            text = io.StringIO()
            pstats.Stats(profiler, stream=text).sort_stats("cumulative").print_stats(40)
            out["profile"] = text.getvalue()
        return out

    return router

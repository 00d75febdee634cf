"""The signed-command benchmark's probe, loaded into a real ``hub run`` with ``--plugins-dir``.

``POST /api/plugins/bench_gate/run`` takes signed commands as JSON (what the signed-commands route
receives) and runs each through the whole signed path inside the hub's event loop, one at a time:
parse, find the device, the light node's checks (signature, window, counter committed to
identity.db), the command registry, the demo plug's driver, the CommandCalled event (recorder,
rules, WebSocket subscribers). It times each from the parsed JSON body to the driver's return.
"""

from __future__ import annotations

import time

from fastapi import APIRouter, Body

from hub import hookimpl
from hub.crypto.statements import Signed


@hookimpl
def hub_api_routes(hub):
    router = APIRouter()

    @router.post("/run")
    async def run(commands: list = Body(...), device: str = "demo:smart_plug") -> dict:
        identity = hub.service("identity")
        lat = []
        started = time.perf_counter()
        for item in commands:
            t0 = time.perf_counter_ns()
            await identity.signed_call(Signed.from_json(item), device_id=device)
            lat.append(time.perf_counter_ns() - t0)
        return {"total_s": time.perf_counter() - started, "lat_ns": lat}

    return router

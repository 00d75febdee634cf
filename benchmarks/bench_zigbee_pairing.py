"""Permit-join to entities shown: a device pressed into pairing, the user opens permit-join through the
hub's API, and the clock stops when ``GET /api/plugins/zigbee/devices`` lists the device with its
entities (joined, interviewed by zigpy, quirks applied, entities added, reporting configured).

Issue #18's target: at most 3 s. A second figure, ``with_states``, goes on until the entities have
their first states (the driver's first read after configuring reporting; an entity still without a
state 5 s later, such as an Aqara sensor's battery, which only its hourly heartbeat fills, is left
out). The coordinator is the ZNP emulator over a socat pty pair at
115,200 baud, in its own process; ``hub run`` is the user's. Each kind of device is paired alone
(one join at a time, as a user pairs a new device), ``--rounds`` devices of each kind.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
from pathlib import Path

import time

from _zigbee_bench import network, pair, percentile


def states_filled(api, ieee: str, started: float, wait: float = 5.0) -> float:
    """Seconds from ``started`` until the last of the device's entities that got a state within
    ``wait`` seconds got it."""
    entity_ids = [e["entity_id"] for e in api.entities(ieee)]
    filled: dict[str, float] = {}
    deadline = time.perf_counter() + wait
    while time.perf_counter() < deadline and len(filled) < len(entity_ids):
        for entity_id in entity_ids:
            if entity_id not in filled and api.request("GET", f"/api/states/{entity_id}")["available"]:
                filled[entity_id] = time.perf_counter() - started
        time.sleep(0.005)
    return max(filled.values(), default=float("nan"))

KINDS = ["plug", "light", "motion", "contact", "thermostat", "lock", "cover", "climate_sensor"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="devices of each kind")
    parser.add_argument("--kinds", default=",".join(KINDS))
    parser.add_argument("--radio", default="znp", choices=["znp", "ezsp"], help="which emulated coordinator")
    args = parser.parse_args()
    kinds = args.kinds.split(",")
    devices = {f"{kind}-{i}": kind for i in range(args.rounds) for kind in kinds}
    with tempfile.TemporaryDirectory() as folder, network(Path(folder), devices, radio=args.radio) as (emulator, api, _hub):
        ieees = {d["name"]: d["ieee"] for d in emulator.call("devices")["devices"]}
        times: dict[str, list[float]] = {kind: [] for kind in kinds}
        with_states: list[float] = []
        for i in range(args.rounds):
            for kind in kinds:
                name = f"{kind}-{i}"
                started = time.perf_counter()
                times[kind].append(pair(emulator, api, [name])[name])
                with_states.append(states_filled(api, ieees[name], started))
    every = [t for ts in times.values() for t in ts]
    print(json.dumps({
        "benchmark": "zigbee_pairing", "radio": args.radio, "baud": 115200, "devices": len(every),
        "median_s": round(statistics.median(every), 3), "max_s": round(max(every), 3),
        "p90_s": round(percentile(every, 90), 3),
        "with_states_median_s": round(statistics.median(with_states), 3), "with_states_max_s": round(max(with_states), 3),
        **{f"{kind}_median_s": round(statistics.median(ts), 3) for kind, ts in times.items()},
        "target_s": 3.0,
    }))


if __name__ == "__main__":
    main()

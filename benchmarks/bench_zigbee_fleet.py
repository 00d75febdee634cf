"""200 emulated devices reporting every second into one ``hub run``: is every report taken in, with
no backlog, and what does it cost the hub's core?

Issue #18's target: no backlog, and the hub's process at most 25 % of one core. The emulator runs
``--fleet 200=motion`` (200 motion sensors, each reporting once a second once reporting is
configured, its value changing each time, so every report is a state change the recorder, rules
and subscribers see) in its own process on the other core; the hub is pinned to one core. After
every device is paired, a window of ``--seconds``:

- reports sent: the emulator's frames out over the window (in steady state the fleet sends nothing
  else); reports taken in: the occupancy state changes the hub recorded in its history over the
  window (each report flips one sensor's occupancy, so each is one change);
- state age: every second, the oldest ``last_seen`` of the 200 devices (a backlog makes it grow);
- CPU: the hub process's user + system time from /proc over the window, divided by the wall time.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from datetime import datetime
from pathlib import Path

from _zigbee_bench import cpu_seconds, network

def frames_out(emulator) -> int:
    return int(emulator.call("stats")["frames_out"])


def pair_fleet(api, count: int, timeout: float) -> float:
    """The fleet joins as soon as permit-join opens (each device was pressed); seconds until every one
    is shown, available, with its entities."""
    started = time.perf_counter()
    api.request("POST", "/api/plugins/zigbee/permit_join", {"duration": 254})
    while True:
        ready = [d for d in api.devices().values() if d["entities"] and d["available"] and d["power_source"] == "battery"]
        if len(ready) >= count:
            break
        if time.perf_counter() - started > timeout:
            raise RuntimeError(f"{len(ready)} of {count} devices paired in {timeout} s")
        if time.perf_counter() - started > 250:
            api.request("POST", "/api/plugins/zigbee/permit_join", {"duration": 254})
        time.sleep(0.5)
    api.request("POST", "/api/plugins/zigbee/permit_join", {"duration": 0})
    return time.perf_counter() - started


def occupancy_entities(api) -> list[str]:
    out = []
    for device in api.devices().values():
        if device["power_source"] != "battery":
            continue
        entities = api.request("GET", f"/api/devices/{device['device_id']}")["entities"]
        out += [e["entity_id"] for e in entities if e["key"].endswith("_occupancy")]
    return out


def changes(api, entity_ids: list[str], start: float, end: float) -> int:
    total = 0
    for entity_id in entity_ids:
        rows = api.request("GET", f"/api/history/{entity_id}?start={start}&end={end}")
        rows = rows.get("states", rows) if isinstance(rows, dict) else rows
        total += sum(1 for r in rows if start <= datetime.fromisoformat(r["last_changed"]).timestamp() <= end)
    return total


def seen_at(value) -> float:
    if isinstance(value, (int, float)):
        return float(value)
    return datetime.fromisoformat(value).timestamp()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=200)
    parser.add_argument("--kind", default="motion")
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--radio", default="znp", choices=["znp", "ezsp"], help="which emulated coordinator")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder, \
            network(Path(folder), {}, fleet=f"{args.devices}={args.kind}", hub_core=0, emulator_core=1, radio=args.radio) as (emulator, api, hub):
        paired_s = pair_fleet(api, args.devices, timeout=1800)
        sensors = occupancy_entities(api)
        time.sleep(5)  # the last ones' first reports in
        cpu0, sent0, t0, wall0 = cpu_seconds(hub.pid), frames_out(emulator), time.perf_counter(), time.time()
        ages = []
        while time.perf_counter() - t0 < args.seconds:
            now = time.time()
            devices = [d for d in api.devices().values() if d["power_source"] == "battery"]
            ages.append(max(now - seen_at(d["last_seen"]) for d in devices))
            time.sleep(1)
        wall = time.perf_counter() - t0
        cpu1, sent1, wall1 = cpu_seconds(hub.pid), frames_out(emulator), time.time()
        time.sleep(1)  # the last reports of the window (the history route flushes the recorder)
        received = changes(api, sensors, wall0, wall1)
    sent = sent1 - sent0
    print(json.dumps({
        "benchmark": "zigbee_fleet", "radio": args.radio, "devices": args.devices, "kind": args.kind, "window_s": round(wall, 1),
        "paired_s": round(paired_s, 1), "occupancy_entities": len(sensors), "reports_sent": sent,
        "reports_taken_in": received, "state_age_max_s": round(max(ages), 2),
        "state_age_median_s": round(statistics.median(ages), 2),
        "hub_cpu_pct_of_one_core": round(100 * (cpu1 - cpu0) / wall, 1), "target_cpu_pct": 25,
    }))


if __name__ == "__main__":
    main()

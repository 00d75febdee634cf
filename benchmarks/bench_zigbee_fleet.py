"""200 emulated devices reporting every second into one ``hub run``: is every report taken in, with
no backlog, and what does it cost the hub's core?

Issue #18's target: no backlog, and the hub's process at most 25 % of one core. The emulator runs
``--fleet 200=motion`` (200 motion sensors, each reporting once a second once reporting is
configured, its value changing each time, so every report is a state change the recorder, rules
and subscribers see) in its own process on the other core; the hub is pinned to one core. After
every device is paired, a window of ``--seconds``:

- reports sent: the emulator's count over the window; reports taken in: the hub's
  ``hub_states_written`` over the same window (each report changes one state);
- state age: every second, the oldest ``last_seen`` of the 200 devices (a backlog makes it grow);
- CPU: the hub process's user + system time from /proc over the window, divided by the wall time.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import tempfile
import time
from datetime import datetime
from pathlib import Path

from _zigbee_bench import cpu_seconds, network, pair

STATES_WRITTEN = re.compile(r"^hub_states_written(?:_total)?(?:\{[^}]*\})?\s+([0-9.e+]+)$", re.M)


def states_written(api) -> float:
    text = api.request("GET", "/api/metrics")
    return sum(float(m) for m in STATES_WRITTEN.findall(text))


def seen_at(value) -> float:
    if isinstance(value, (int, float)):
        return float(value)
    return datetime.fromisoformat(value).timestamp()


def reports_sent(emulator) -> int:
    stats = emulator.call("stats")
    return int(stats.get("reports_sent", stats.get("reports", stats.get("frames_out", 0))))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=200)
    parser.add_argument("--kind", default="motion")
    parser.add_argument("--seconds", type=float, default=60)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder, \
            network(Path(folder), {}, fleet=f"{args.devices}={args.kind}", hub_core=0, emulator_core=1) as (emulator, api, hub):
        names = [d["name"] for d in emulator.call("devices")["devices"]]
        started = time.perf_counter()
        pair(emulator, api, names, timeout=1800)
        paired_s = time.perf_counter() - started
        time.sleep(10)  # reporting configured on the last ones, first reports in
        cpu0, sent0, written0, t0 = cpu_seconds(hub.pid), reports_sent(emulator), states_written(api), time.perf_counter()
        ages = []
        while time.perf_counter() - t0 < args.seconds:
            now = time.time()
            devices = api.devices().values()
            ages.append(max(now - seen_at(d["last_seen"]) for d in devices))
            time.sleep(1)
        wall = time.perf_counter() - t0
        cpu1, sent1, written1 = cpu_seconds(hub.pid), reports_sent(emulator), states_written(api)
        # the window's last reports may still be on the line: give them a second, then count again
        time.sleep(1.5)
        written_late = states_written(api)
    sent, written = sent1 - sent0, written1 - written0
    print(json.dumps({
        "benchmark": "zigbee_fleet", "devices": args.devices, "kind": args.kind, "window_s": round(wall, 1),
        "paired_s": round(paired_s, 1), "reports_sent": sent, "states_written": int(written),
        "states_written_incl_late": int(written_late - written0),
        "state_age_max_s": round(max(ages), 2), "state_age_median_s": round(statistics.median(ages), 2),
        "hub_cpu_pct_of_one_core": round(100 * (cpu1 - cpu0) / wall, 1), "target_cpu_pct": 25,
    }))


if __name__ == "__main__":
    main()

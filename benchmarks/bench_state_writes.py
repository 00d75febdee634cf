"""State writes per second through the state machine and the bus, one subscriber, 1,000 entities.

Issue #2's target: at least 150,000 writes/s on one core. Every write changes the value, so each one
makes a new State, publishes a StateChanged and reaches the subscriber (identical writes, which fire
nothing, would flatter the figure).
"""

from __future__ import annotations

import argparse
import json
import os
import time

from hub.core.bus import EventBus
from hub.core.events import StateChanged
from hub.core.state import StateMachine

ENTITIES = 1000


def run(writes: int, repeats: int) -> dict:
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})  # one core, as the target says
    bus = EventBus()
    states = StateMachine(bus, time.time)
    received = [0]

    def subscriber(event: StateChanged) -> None:
        received[0] += 1

    bus.subscribe(StateChanged, subscriber)
    ids = [f"sensor.bench_{i}" for i in range(ENTITIES)]
    attrs = {"unit": "W", "device_class": "power"}
    for entity_id in ids:
        states.set(entity_id, 0.0, attrs)
    rates = []
    for r in range(repeats):
        received[0] = 0
        start = time.perf_counter()
        for n in range(writes):
            states.set(ids[n % ENTITIES], float(n + r * writes + 1), attrs)
        elapsed = time.perf_counter() - start
        assert received[0] == writes, "every write must reach the subscriber"
        rates.append(writes / elapsed)
    rates.sort()
    return {"benchmark": "state_writes", "entities": ENTITIES, "writes": writes, "repeats": repeats,
            "median_per_s": round(rates[len(rates) // 2]), "best_per_s": round(rates[-1]), "target_per_s": 150_000}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--writes", type=int, default=500_000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    print(json.dumps(run(args.writes, args.repeats)))


if __name__ == "__main__":
    main()

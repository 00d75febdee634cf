"""State writes per second on a driver's path in a running hub, beside the bare state machine.

Issue #2's target: at least 150,000 writes/s on one core. The headline is the *hub* figure: a real
``hub run`` process (pinned to one core) with the benchmark driver ``hub_plugins/bench_writer.py``
writing its 1,000 sensors through ``hub.entity(entity_id).set(value)``, 1,000 writes between two
yields to the event loop, while the recorder batches and commits every change, the rule engine
checks its rules (``--rules`` ``numeric_state`` rules watching as many of the sensors) and a
WebSocket client (this process, on the other core) follows ``--ws-entities`` of them, as a
dashboard page would. Each burst ends with the recorder's commit of what it queued.

The *bare* figure is the state machine and the bus alone with one no-op subscriber, in this
process: the ceiling, not what a driver gets. Every write changes the value (identical writes fire
nothing and would flatter both figures); attributes do not change, as for most real sensors.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import statistics
import sys
import tempfile
import threading
import time
import urllib.request
from datetime import datetime, timezone
from pathlib import Path

from _hubproc import free_port, start, stop, wait_healthy

from hub.core.bus import EventBus
from hub.core.events import StateChanged
from hub.core.state import StateMachine

ENTITIES = 1000
PLUGINS_DIR = Path(__file__).resolve().parent / "hub_plugins"


def cores() -> list[int]:
    return sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []


def pin(core: int | None) -> None:
    if core is not None and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {core})


def bare(writes: int, repeats: int) -> list[float]:
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
        begin = time.perf_counter()
        for n in range(writes):
            states.set(ids[n % ENTITIES], float(n + r * writes + 1), attrs)
        elapsed = time.perf_counter() - begin
        assert received[0] == writes, "every write must reach the subscriber"
        rates.append(writes / elapsed)
    return rates


def rules_yaml(count: int) -> str:
    """Rules as users write them, watching the benchmark's sensors; values stay at or above zero, so
    they are checked on every change and never fire (the common case for a rule)."""
    return "".join(f"""
- id: guard_{i}
  trigger:
    - trigger: numeric_state
      entity_id: sensor.bench_{i}
      below: -1
  action:
    - log: "sensor.bench_{i} below zero"
""" for i in range(count))


class Follower(threading.Thread):
    """A WebSocket client following some of the sensors, as a dashboard page does."""

    def __init__(self, port: int, token: str, entity_ids: list[str]) -> None:
        super().__init__(daemon=True)
        self.url = f"ws://127.0.0.1:{port}/api/ws"
        self.token = token
        self.entity_ids = entity_ids
        self.subscribed = threading.Event()
        self.events = 0
        self.closed: str | None = None

    def run(self) -> None:
        from websockets.exceptions import ConnectionClosed
        from websockets.sync.client import connect

        try:
            with connect(self.url, additional_headers={"Authorization": f"Bearer {self.token}"}) as ws:
                assert json.loads(ws.recv())["type"] == "auth_ok"
                ws.send(json.dumps({"id": 1, "type": "subscribe_states", "entity_ids": self.entity_ids}))
                answer = json.loads(ws.recv())
                assert answer.get("success"), answer
                self.subscribed.set()
                for message in ws:
                    if json.loads(message).get("type") == "event":
                        self.events += 1
        except ConnectionClosed as exc:
            self.closed = str(exc)
        finally:
            self.subscribed.set()


def post(port: int, token: str, path: str, body: dict) -> dict:
    req = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}", data=json.dumps(body).encode(), method="POST",
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=600) as resp:
        return json.loads(resp.read())


def in_hub(args, hub_core: int | None, client_core: int | None) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "hub-data"
        data.mkdir()
        (data / "configuration.yaml").write_text(f"bench_writer:\n  entities: {ENTITIES}\n")
        (data / "automations.yaml").write_text(rules_yaml(args.rules) or "[]\n")
        port = free_port()
        proc = start(data, port, plugins_dir=PLUGINS_DIR, core=hub_core)
        try:
            wait_healthy(proc, port)
            token = (data / "owner-token").read_text().strip()
            pin(client_core)
            follower = None
            if args.ws_entities:
                follower = Follower(port, token, [f"sensor.bench_{i}" for i in range(args.ws_entities)])
                follower.start()
                follower.subscribed.wait(10)
                assert follower.closed is None and follower.is_alive(), "the WebSocket subscription failed"
            post(port, token, "/api/plugins/bench_writer/run", {"writes": ENTITIES * 10, "batch": args.batch})  # warm-up
            runs = [post(port, token, "/api/plugins/bench_writer/run",
                         {"writes": args.writes, "batch": args.batch}) for _ in range(args.repeats)]
            profile = None
            if args.profile:
                profile = post(port, token, "/api/plugins/bench_writer/run",
                               {"writes": args.writes, "batch": args.batch, "profile": True})["profile"]
            if follower is not None:
                def followed(writes: int) -> int:  # each burst writes sensors 0, 1, 2, ... round-robin
                    return writes // ENTITIES * args.ws_entities + min(writes % ENTITIES, args.ws_entities)

                expected = followed(ENTITIES * 10) + followed(args.writes) * (args.repeats + bool(args.profile))
                deadline = time.monotonic() + 10
                while follower.events < expected and follower.closed is None and time.monotonic() < deadline:
                    time.sleep(0.05)
                assert follower.closed is None, f"the hub closed the WebSocket: {follower.closed}"
                assert follower.events == expected, f"WebSocket got {follower.events} of {expected} events"
        finally:
            stop(proc)
    rates = sorted(r["writes"] / r["wall_s"] for r in runs)
    return {"rates": rates, "loop_rates": sorted(r["writes"] / r["loop_s"] for r in runs),
            "commit_share": statistics.median((r["wall_s"] - r["loop_s"]) / r["wall_s"] for r in runs),
            "cpu_share": statistics.median(r["cpu_s"] / r["wall_s"] for r in runs), "profile": profile}


def machine() -> dict:
    """What the figures depend on: the same script gave 2.5 times the bare figure on a newer EPYC."""
    info: dict = {"nproc": os.cpu_count(), "python": platform.python_version(), "kernel": platform.release()}
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        fields = dict(line.split(":", 1) for line in cpuinfo.read_text().split("\n\n")[0].splitlines() if ":" in line)
        fields = {k.strip(): v.strip() for k, v in fields.items()}
        info["cpu"] = f"{fields.get('model name', '?')} (family {fields.get('cpu family', '?')} model {fields.get('model', '?')})"
        info["bogomips"] = fields.get("bogomips")
    else:
        info["cpu"] = platform.processor()
    return info


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--writes", type=int, default=500_000, help="writes per timed burst")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--batch", type=int, default=ENTITIES, help="writes between two yields to the loop")
    parser.add_argument("--rules", type=int, default=100, help="numeric_state rules watching the sensors")
    parser.add_argument("--ws-entities", type=int, default=20, help="sensors a WebSocket client follows (0: none)")
    parser.add_argument("--profile", action="store_true", help="one more burst under cProfile; its top entries go to stderr")
    parser.add_argument("--all-cores", action="store_true", help="leave the hub unpinned (its recorder thread may use another core)")
    parser.add_argument("--no-bare", action="store_true", help="skip the bare state machine figure")
    args = parser.parse_args()
    if not 0 <= args.ws_entities <= ENTITIES or not 0 <= args.rules <= ENTITIES:
        parser.error(f"--ws-entities and --rules: 0 to {ENTITIES} (one per sensor at most)")
    available = cores()
    hub_core = available[0] if available else None
    client_core = available[-1] if len(available) > 1 else None
    result: dict = {"benchmark": "state_writes", "entities": ENTITIES, "writes": args.writes, "repeats": args.repeats}
    if not args.no_bare:
        pin(hub_core)  # one core, as the target says
        rates = sorted(bare(args.writes, args.repeats))
        result["bare_median_per_s"] = round(statistics.median(rates))
        result["bare_best_per_s"] = round(rates[-1])
    hub = in_hub(args, None if args.all_cores else hub_core, client_core)
    result.update({
        "hub_median_per_s": round(statistics.median(hub["rates"])), "hub_range_per_s": [round(hub["rates"][0]), round(hub["rates"][-1])],
        "hub_writes_only_median_per_s": round(statistics.median(hub["loop_rates"])),
        "hub_final_commit_share": round(hub["commit_share"], 2), "hub_cpu_share": round(hub["cpu_share"], 2), "batch": args.batch, "rules": args.rules, "ws_entities": args.ws_entities,
        "hub_cores": "all" if args.all_cores else 1, "target_per_s": 150_000, "machine": machine(),
        "command": shlex.join([Path(sys.executable).name, *sys.argv]),
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    })
    if hub["profile"]:
        print(hub["profile"], file=sys.stderr)
    print(json.dumps(result))


if __name__ == "__main__":
    main()

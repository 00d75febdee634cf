"""State changes through a running hub to mosquitto to a subscriber in another process (issue #20).

A driver in ``hub run`` (``mqtt_plugins/bench_mqtt_driver.py``) writes its 1,000 sensors at an
offered rate spread evenly over the run; the bridge publishes each change, retained, on
``ruffhub/bench/state/<entity_id>``; ``mosquitto_sub`` in its own process records when each
arrives (``-F '%U %p'``). Latency is from the state change (the state's own ``last_updated``, the hub's wall clock) to
its arrival at the subscriber (the same clock: one machine). The hub is pinned to core 0, the
subscriber to core 1; mosquitto runs where the kernel puts it.

Targets: ≥ 10,000 changes/s sustained, p99 ≤ 20 ms.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import shutil
import time
from datetime import datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent


def subscriber(port: int, out: Path) -> subprocess.Popen:
    """``mosquitto_sub`` (C, so the subscriber is not what is measured) on core 1, writing each
    live (not retained) message with its arrival time (``%U``, unix seconds with nanoseconds)."""
    pin = (lambda: os.sched_setaffinity(0, {1})) if hasattr(os, "sched_setaffinity") and (os.cpu_count() or 1) > 1 else None
    proc = subprocess.Popen([shutil.which("mosquitto_sub") or "mosquitto_sub", "-h", "127.0.0.1", "-p", str(port),
                             "-R", "-F", "%U %p", "-t", "ruffhub/bench/state/#", "-t", "bench/probe"],
                            stdout=out.open("w"), preexec_fn=pin)
    import paho.mqtt.client as paho

    probe = paho.Client(paho.CallbackAPIVersion.VERSION2)
    probe.connect("127.0.0.1", port)
    probe.loop_start()
    deadline = time.monotonic() + 10
    while "probe" not in out.read_text():  # subscribed once the probe comes through
        assert time.monotonic() < deadline, "mosquitto_sub did not subscribe"
        probe.publish("bench/probe", "probe").wait_for_publish(5)
        time.sleep(0.1)
    probe.loop_stop()
    probe.disconnect()
    return proc


def arrivals(out: Path) -> tuple[list[float], list[float]]:
    arrived, changed = [], []
    for line in out.read_text().splitlines():
        stamp, _, payload = line.partition(" ")
        if not payload.startswith("{"):
            continue
        arrived.append(float(stamp))
        changed.append(datetime.fromisoformat(json.loads(payload)["last_updated"]).timestamp())
    return arrived, changed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=10_000, help="state changes offered per second")
    parser.add_argument("--seconds", type=float, default=12)
    parser.add_argument("--qos", type=int, default=0, choices=[0, 1])
    parser.add_argument("--commit-interval", type=float, default=5.0, help="the hub's recorder commit interval, s")
    parser.add_argument("--freeze-gc", action="store_true", help="gc.freeze() in the hub before the run (diagnosis)")
    parser.add_argument("--all-cores", action="store_true", help="do not pin the hub to core 0")
    parser.add_argument("--details", action="store_true", help="latency per second on stderr")
    args = parser.parse_args()

    sys.path.insert(0, str(HERE))
    from _mqtt_bench import cpu_seconds, hub_and_broker, percentile

    with tempfile.TemporaryDirectory() as folder, hub_and_broker(Path(folder), qos=args.qos, commit_interval=args.commit_interval, freeze_gc=args.freeze_gc, hub_core=None if args.all_cores else 0) as (broker, api):
        out = Path(folder) / "received.txt"
        sub = subscriber(broker.port, out)
        api.request("POST", "/api/plugins/bench_mqtt_driver/run", {"rate": 2000, "seconds": 1})  # warm-up
        time.sleep(0.5)
        start, cpu = time.time(), cpu_seconds(api.pid)
        run = api.request("POST", "/api/plugins/bench_mqtt_driver/run", {"rate": args.rate, "seconds": args.seconds})
        hub_cpu = (cpu_seconds(api.pid) - cpu) / run["seconds"]
        status = api.get("/api/plugins/mqtt/status")
        size = -1
        while out.stat().st_size != size:  # until the last messages are in
            size = out.stat().st_size
            time.sleep(1.0)
        sub.terminate()
        sub.wait(10)
        arrived, changed = arrivals(out)
    timed = [(a, c) for a, c in zip(arrived, changed) if c >= start]
    latencies = [(a - c) * 1000 for a, c in timed]
    if args.details:
        first = timed[0][1]
        for second in range(int(args.seconds) + 1):
            chunk = [(a - c) * 1000 for a, c in timed if second <= c - first < second + 1]
            if chunk:
                print(f"# second {second}: {len(chunk)} changes, p50 {percentile(chunk, 50):.1f} ms, "
                      f"p99 {percentile(chunk, 99):.1f} ms, max {max(chunk):.1f} ms", file=sys.stderr)
    span = timed[-1][0] - timed[0][0] if len(timed) > 1 else float("nan")
    print(json.dumps({
        "benchmark": "mqtt_states",
        "offered_per_s": args.rate,
        "qos": args.qos,
        "writes": run["writes"],
        "writer_seconds": round(run["seconds"], 3),
        "received": len(timed),
        "lost": run["writes"] - len(timed),
        "received_per_s": round(len(timed) / span) if timed else 0,
        "latency_ms_p50": round(percentile(latencies, 50), 2),
        "latency_ms_p99": round(percentile(latencies, 99), 2),
        "latency_ms_max": round(max(latencies), 2),
        "hub_dropped": status["dropped"],
        "hub_gc_pauses_ms": run["gc_pauses_ms"],
        "hub_longest_loop_lag_ms": run["longest_loop_lag_ms"],
        "hub_cpu_percent": round(hub_cpu * 100),
        "target": ">= 10000/s, p99 <= 20 ms",
    }))


if __name__ == "__main__":
    main()

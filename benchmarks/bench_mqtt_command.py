"""An MQTT command to the driver's call, through a running hub (issue #20).

A client in this process publishes ``{"command": "turn_on"}`` (then ``turn_off``) on
``ruffhub/bench/set/switch.mqb_switch`` with an MQTT 5 response topic; the hub's bridge passes it
through the command gate (validation, the command log) to the benchmark driver
(``mqtt_plugins/bench_mqtt_driver.py``), whose handler returns the wall time it was called; the
reply comes back on the response topic. Timed: publish to driver call (the target's span), and
publish to reply (the sender's round trip). One command at a time, every ``--interval`` s; the hub
pinned to core 0, this client to core 1.

Target: p99 ≤ 10 ms, publish to driver call, on loopback.
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _mqtt_bench import hub_and_broker, percentile  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--commands", type=int, default=2000)
    parser.add_argument("--interval", type=float, default=0.005, help="seconds between commands")
    args = parser.parse_args()

    import paho.mqtt.client as paho
    from paho.mqtt.packettypes import PacketTypes
    from paho.mqtt.properties import Properties

    if hasattr(os, "sched_setaffinity") and (os.cpu_count() or 1) > 1:
        os.sched_setaffinity(0, {1})
    with tempfile.TemporaryDirectory() as folder, hub_and_broker(Path(folder)) as (broker, api):
        replies: queue.Queue = queue.Queue()
        client = paho.Client(paho.CallbackAPIVersion.VERSION2, protocol=paho.MQTTv5)
        client.on_message = lambda c, u, msg: replies.put((time.time(), msg.payload))
        client.connect("127.0.0.1", broker.port)
        client.socket().setsockopt(6, 1, 1)  # TCP_NODELAY, as the hub's own link
        client.loop_start()
        client.subscribe("bench/answers", qos=0)
        time.sleep(0.3)
        props = Properties(PacketTypes.PUBLISH)
        props.ResponseTopic = "bench/answers"
        to_call, round_trip = [], []
        for i in range(args.commands + 50):  # the first 50 warm up (imports, first commands)
            command = "turn_on" if i % 2 == 0 else "turn_off"
            sent = time.time()
            client.publish("ruffhub/bench/set/switch.mqb_switch", json.dumps({"command": command, "id": i}),
                           qos=0, properties=props)
            arrived, payload = replies.get(timeout=10)
            reply = json.loads(payload)
            assert reply["ok"] and reply["id"] == i, reply
            if i >= 50:
                to_call.append((reply["result"]["called"] - sent) * 1000)
                round_trip.append((arrived - sent) * 1000)
            time.sleep(args.interval)
        client.loop_stop()
        state = api.get("/api/states/switch.mqb_switch")["value"]
    print(json.dumps({
        "benchmark": "mqtt_command",
        "commands": args.commands,
        "to_driver_ms_p50": round(percentile(to_call, 50), 2),
        "to_driver_ms_p99": round(percentile(to_call, 99), 2),
        "to_driver_ms_max": round(max(to_call), 2),
        "round_trip_ms_p50": round(percentile(round_trip, 50), 2),
        "round_trip_ms_p99": round(percentile(round_trip, 99), 2),
        "final_state": state,
        "target": "publish to driver call p99 <= 10 ms",
    }))


if __name__ == "__main__":
    main()

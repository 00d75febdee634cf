"""A GPIO edge to the ``binary_sensor`` state change a user sees: from the edge's kernel timestamp
(CLOCK_MONOTONIC, as the simulated chip stamps it) to the ``state_changed`` message arriving on the
hub's WebSocket API (``subscribe_states``), as a dashboard receives it.

The path is the driver's real one: a real ``hub run`` with ``gpio:`` configured, the fake ``gpiod``
(first on its ``PYTHONPATH``) reading the request's event socket from the event loop's ``add_reader``,
``read_edge_events``, the state machine, the bus, the WebSocket. The chip is ``gpio_sim.py`` in its
own process; a PIR's output (no debounce) flips every ``--interval`` seconds.

Issue #19's target: p99 at most 5 ms.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "hardware-in-loop"))

from websockets.sync.client import connect  # noqa: E402

from gpio_board import LINES, GpioBoard  # noqa: E402

PIR = "binary_sensor.hall_pir"


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--edges", type=int, default=1000)
    parser.add_argument("--interval", type=float, default=0.02, help="seconds between edges")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        board = GpioBoard(Path(folder))
        try:
            board.start()
            hub = board.hub
            hub.wait_for(lambda: hub.request("GET", f"/api/states/{PIR}")[1].get("available"), 10, "the PIR")
            control = socket.create_connection(("127.0.0.1", board.control_port))
            replies = control.makefile()

            def drive(level: int) -> int:
                control.sendall((json.dumps({"op": "drive", "chip": "gpiochip0", "line": LINES["pir"],
                                             "level": level}) + "\n").encode())
                reply = json.loads(replies.readline())
                assert reply["ok"], reply
                return reply["timestamp_ns"]

            with connect(f"ws://127.0.0.1:{hub.port}/api/ws",
                         additional_headers={"Authorization": f"Bearer {hub.token}"}) as ws:
                ws.send(json.dumps({"id": 1, "type": "subscribe_states", "entity_ids": [PIR]}))
                while json.loads(ws.recv(timeout=10)).get("type") != "result":
                    pass
                latencies = []
                for i in range(args.edges + 20):
                    level = 1 - i % 2
                    edge_ns = drive(level)
                    while True:
                        msg = json.loads(ws.recv(timeout=5))
                        seen_ns = time.monotonic_ns()
                        if msg.get("type") == "event" and msg["event"]["data"]["new_state"]["value"] == ("on" if level else "off"):
                            break
                    if i >= 20:  # warm-up
                        latencies.append((seen_ns - edge_ns) / 1e6)
                    time.sleep(args.interval)
            control.close()
        finally:
            board.stop()
    print(json.dumps({
        "edges": len(latencies), "interval_s": args.interval,
        "p50_ms": round(statistics.median(latencies), 3), "p99_ms": round(percentile(latencies, 99), 3),
        "max_ms": round(max(latencies), 3), "target_p99_ms": 5, "load_average": os.getloadavg(),
    }))


if __name__ == "__main__":
    main()

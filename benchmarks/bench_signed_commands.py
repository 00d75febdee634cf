"""Signed commands through the identity gate of a real ``hub run`` (issue #16).

Targets: from a signed command's arrival at the hub to the driver call, p99 on one core, at most
2 ms; signed commands verified and executed by one hub, at least 5,000/s.

Set-up: ``hub run`` (embedded default: demo plugin and embedded chain) pinned to one core, with
``benchmarks/gate_plugins`` (the chain's network as a service, and a probe route); the demo plug
(keyless: the hub is its light node) is bound to the benchmark's key as ``hub device bind`` would
leave it, through identity.db and the same LightNode. The client signs every command beforehand
and runs on the other core. Measured:

- ``gate_*``: in the hub, each command from its parsed JSON body through the whole signed path to
  the driver's return (the probe times it; no HTTP), one at a time: latency p50/p99, and rate;
- ``send_to_driver_*``: one command per HTTP request, one request at a time, from the client's
  send (its monotonic clock) to the moment the demo driver switched the plug (the probe's stamp
  on the same clock): arrival at the hub to the driver call, plus the client's send;
- ``http_single_*``: the same requests' round trips, timed by the client;
- ``http_batch_per_s``: lists of 100 commands per request (the route's maximum).

Every command changes the plug (turn_on / turn_off alternate), so each is a state change the
recorder, rules and subscribers see.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

from _hubproc import free_port, start, stop, wait_healthy

from hub.chain.protocol.genesis import load_genesis
from hub.crypto.keys import PrivateKey
from hub.crypto.statements import Bind, Command, sign
from hub.identity.lightnode import LightNode
from hub.identity.store import IdentityStore, SqliteFlash

PLUGINS = Path(__file__).parent / "gate_plugins"
PLUG = "demo:smart_plug"
PLUG_KEY = PrivateKey(b"\x51" * 32)
OWNER = PrivateKey(b"\x52" * 32)


def _bind(data: Path):
    net = load_genesis(data / "chain" / "genesis.json").network
    store = IdentityStore(data)
    try:
        store.set_identity(PLUG, PLUG_KEY.public_key, False, time.time())
        node = LightNode(PLUG_KEY.public_key, net, SqliteFlash(store, PLUG, time.time))
        node.bind(sign(Bind(PLUG_KEY.public_key, OWNER.public_key, int(time.time() * 1000)), PLUG_KEY, net))
    finally:
        store.close()
    return net


class Signer:
    def __init__(self, net) -> None:
        self.net = net
        self.counter = int(time.time() * 1_000_000)

    def batch(self, n: int) -> list[dict]:
        out = []
        now = int(time.time() * 1000)  # signed just before sending: within the ±30 s window
        for _ in range(n):
            self.counter += 1
            cmd = "turn_on" if self.counter % 2 else "turn_off"
            out.append(sign(Command(self.net.chain_id, PLUG_KEY.public_key, "outlet", cmd, {}, now, self.counter,
                                    OWNER.public_key), OWNER, self.net).to_json())
        return out


def _post(conn: http.client.HTTPConnection, path: str, body) -> tuple[int, object]:
    conn.request("POST", path, json.dumps(body), {"Content-Type": "application/json"})
    resp = conn.getresponse()
    return resp.status, json.loads(resp.read())


def _post_token(conn: http.client.HTTPConnection, path: str, token: str):
    conn.request("POST", path, "", {"Authorization": f"Bearer {token}"})
    return json.loads(conn.getresponse().read())


def _match(sends: list[int], stamps: list[int]) -> list[float]:
    """ms from each send to the first driver stamp before the next send (one request at a time)."""
    out, j = [], 0
    stamps = sorted(stamps)
    for i, sent in enumerate(sends):
        end = sends[i + 1] if i + 1 < len(sends) else float("inf")
        while j < len(stamps) and stamps[j] < sent:
            j += 1
        if j < len(stamps) and stamps[j] < end:
            out.append((stamps[j] - sent) / 1e6)
    return out


def _pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--commands", type=int, default=5000, help="per measurement")
    parser.add_argument("--freeze", action="store_true", help="gc.freeze() in the hub first (an experiment)")
    parser.add_argument("--profile", action="store_true", help="print a profile of the in-hub path instead")
    parser.add_argument("--core", type=int, default=0, help="the CPU the hub is pinned to (the client takes the others)")
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity") and len(os.sched_getaffinity(0)) > 1:
        os.sched_setaffinity(0, os.sched_getaffinity(0) - {args.core})
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "hub-data"
        port = free_port()
        proc = start(data, port, plugins_dir=PLUGINS)
        wait_healthy(proc, port)
        stop(proc)
        net = _bind(data)
        proc = start(data, port, plugins_dir=PLUGINS, core=args.core)
        try:
            wait_healthy(proc, port)
            token = (data / "owner-token").read_text().strip()
            signer = Signer(net)
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            route = f"/api/devices/{PLUG}/signed-commands"
            _post(conn, route, signer.batch(1))  # warm-up: the light node is opened here
            if args.profile:
                conn.request("POST", "/api/plugins/bench_gate/run?profile=true", json.dumps(signer.batch(2000)),
                             {"Content-Type": "application/json", "Authorization": f"Bearer {token}"})
                print(json.loads(conn.getresponse().read())["profile"])
                return
            # (a) in the hub: the gate, one command at a time
            gate_lat: list[float] = []
            gate_total = 0.0
            gc_pauses: list[tuple[int, int]] = []
            for _ in range(max(1, args.commands // 500)):
                body = json.dumps(signer.batch(500))
                conn.request("POST", "/api/plugins/bench_gate/run" + ("?freeze=true" if args.freeze else ""), body,
                             {"Content-Type": "application/json", "Authorization": f"Bearer {token}"})
                resp = conn.getresponse()
                answer = json.loads(resp.read())
                assert resp.status == 200, answer
                gate_lat += [ns / 1e6 for ns in answer["lat_ns"]]
                gate_total += answer["total_s"]
                gc_pauses += answer["gc_ns"]
            # (b) over HTTP, one per request
            single: list[float] = []
            sends: list[int] = []
            _post_token(conn, "/api/plugins/bench_gate/stamps", token)
            started = time.perf_counter()
            for item in (x for _ in range(max(1, args.commands // 500)) for x in signer.batch(500)):
                t0 = time.perf_counter()
                sends.append(time.monotonic_ns())
                status, answer = _post(conn, route, item)
                single.append((time.perf_counter() - t0) * 1000)
                assert status == 200 and answer["ok"], answer
            single_total = time.perf_counter() - started
            to_driver = _match(sends, _post_token(conn, "/api/plugins/bench_gate/stamps", token))
            # (c) over HTTP, batches of 100
            batches = [signer.batch(100) for _ in range(max(1, args.commands // 100))]
            started = time.perf_counter()
            for batch in batches:
                status, answers = _post(conn, route, batch)
                assert status == 200 and all(a["ok"] for a in answers), answers[:3]
            batch_total = time.perf_counter() - started
        finally:
            stop(proc)
    print(json.dumps({
        "benchmark": "signed_commands",
        "commands": len(gate_lat),
        "gate_p50_ms": round(statistics.median(gate_lat), 3),
        "gate_p99_ms": round(_pct(gate_lat, 99), 3),
        "gate_p95_ms": round(_pct(gate_lat, 95), 3),
        "gate_over_2ms": sum(1 for x in gate_lat if x > 2),
        "gate_per_s": round(len(gate_lat) / gate_total),
        "gc_gen2_max_ms": round(max([ns for g, ns in gc_pauses if g == 2] or [0]) / 1e6, 3),
        "gc_over_1ms": sum(1 for _, ns in gc_pauses if ns > 1e6),
        "send_to_driver_matched": len(to_driver),
        "send_to_driver_p50_ms": round(statistics.median(to_driver), 3),
        "send_to_driver_p99_ms": round(_pct(to_driver, 99), 3),
        "http_single_p50_ms": round(statistics.median(single), 3),
        "http_single_p99_ms": round(_pct(single, 99), 3),
        "http_single_per_s": round(len(single) / single_total),
        "http_batch_per_s": round(len(batches) * 100 / batch_total),
        "target_p99_ms": 2.0, "target_per_s": 5000,
    }))


if __name__ == "__main__":
    main()

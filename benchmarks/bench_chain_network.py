"""Transfers per second through a 4-node devnet, submission to irreversible inclusion; block propagation latency.

Issue #6's target: at least 2,000 transfers/s sustained through a 4-node devnet on this machine
(every process on its 2 cores), submitted over RPC, measured from submission to inclusion in an
irreversible block, with 1 s slots.

The load offered by default is 2,300 transfers/s, 15 % above the target: what a network sustains
can only be read where it is offered more. Offered exactly 2,000, a network that keeps up includes
what the client managed to send, ~1,960-2,000 a second (the client shares the cores and its last
requests return late), so the figure echoes the offer and lands on either side of 2,000 by chance,
whatever the network's capacity. ``--rate 2000`` shows that it keeps up there: every transfer
irreversible, latency flat.

Set-up: ``hub chain genesis`` for 4 producers with ``BLOCK_INTERVAL=1000`` (each producer key
funded, as for any devnet); ``--senders`` accounts funded by transfers from the producers'
accounts, made irreversible before the measured window; four ``hub chain node`` processes on
loopback, each peered with the other three, each a producer with its RPC. All transfers are signed before the clock starts (clients sign on their own
machines). One submitter thread per node in this process (a fifth process on the same two cores)
offers ``--rate`` transfers/s for ``--seconds``, open loop: every 50 ms it sends what is due in one
``POST /txs`` (``--per-tx``: one ``POST /tx`` each, sequentially, as fast as the node answers). A
sender's transfers all go to the same node, so their nonces arrive in order. A watcher thread
follows node 0's ``/stream`` (server-sent events) and notes when each height became the head and
when it became irreversible. Afterwards the blocks are read back over RPC: each transfer's latency is the moment
its block was first seen irreversible minus the moment its request was sent.

Figures: *sustained* is the transfers in the blocks of the whole slots from 2 s after the first
submission to the last submission, divided by those slots' time (what the network absorbs while
the load lasts; equal to the offered rate when it keeps up); *end to end* is all transfers over first submission to the
last one irreversible (includes the finality lag once); latency p50/p99/max; CPU per transfer of
the nodes (split into their event loops and their worker threads, from /proc) and of this client,
and how many of the 2 cores all of them kept busy while the load lasted.

Propagation: each node logs (at INFO, local time, ms) when it produced a block and when it applied
a block from a peer. All nodes share this machine's clock, so for each block the delay to each of
the other three nodes is their "applied" time minus the producer's "produced" time: encoding,
loopback TCP, decoding, signature pre-check, apply and SQLite commit at the receiver. Reported
separately for empty blocks produced before the load and for blocks produced during it.
"""

from __future__ import annotations

import argparse
import hashlib
import http.client
import json
import math
import statistics
import sys
import tempfile
import threading
import time
import urllib.parse
from collections import defaultdict
from pathlib import Path

from _devnet import PRODUCED, RECEIVED, Devnet, cpu_seconds, json_line, key, make_genesis, stamp, thread_cpu_seconds

import httpx

from hub.chain.node.files import read_key
from hub.chain.protocol import payloads as p
from hub.chain.protocol.constants import RUFF
from hub.chain.protocol.genesis import load_genesis
from hub.chain.protocol.tx import Transaction
from hub.crypto.address import address_of
from hub.crypto.encoding import encode
from hub.crypto.signing import Network

TARGET = 2000
OFFERED = 2300  # default --rate: above the target, see the docstring
FUND = 1000 * RUFF  # per sender, from a producer's account
TICK = 0.05


def _pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    s = sorted(values)
    return s[min(len(s) - 1, int(len(s) * q))]


def sign_transfers(network: Network, senders: list, count: int, valid_until: int) -> list[tuple[int, bytes]]:
    """``count`` transfers round-robin over ``senders``: (sender index, wire bytes)."""
    to = address_of(key("recipient").public_key)
    out = []
    for i in range(count):
        s = i % len(senders)
        tx = Transaction.create(senders[s], network, "transfer", p.Transfer(to=to, amount=1 + i % 7),
                                nonce=1 + i // len(senders), fee=10_000, valid_until=valid_until)
        out.append((s, tx.raw))
    return out


class Watcher(threading.Thread):
    """Follows one node's ``/stream``: the first time each height was the head and was irreversible.

    Server-sent events rather than polling ``/head``: 20 polls a second cost the client ~1.5 ms of
    CPU each and node 0 a request, a worker hop and its lock each, all of it on the two cores being
    measured. The stream looks at the head every 0.2 s (``stream_interval``), so a time noted here is
    up to 0.2 s late (polling every 50 ms: up to 50 ms)."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.url = url
        self.head_at: dict[int, float] = {}
        self.final_at: dict[int, float] = {}
        self.head = self.lib = 0
        self.stop = threading.Event()

    def run(self) -> None:
        with httpx.Client(timeout=httpx.Timeout(5.0, read=30.0)) as c:
            while not self.stop.is_set():
                try:
                    with c.stream("GET", f"{self.url}/stream") as r:
                        self._follow(r.iter_lines())
                except (httpx.HTTPError, ValueError):
                    time.sleep(TICK)

    def _follow(self, lines) -> None:
        event = None
        for line in lines:
            if self.stop.is_set():
                return
            if line.startswith("event: "):
                event = line[7:]
            elif line.startswith("data: "):
                height, now = json.loads(line[6:])["height"], time.time()
                if event == "block":
                    self.head_at.setdefault(height, now)
                    self.head = max(self.head, height)
                elif event == "final":
                    for h in range(self.lib + 1, height + 1):
                        self.final_at.setdefault(h, now)
                    self.lib = max(self.lib, height)


class _Keepalive:
    """One keep-alive HTTP/1.1 connection through the standard library: this client shares the two
    cores with the nodes it measures, and httpx spent ~1.5 ms of CPU per request (5 % of the
    machine at 80 requests/s), several times what ``http.client`` needs."""

    def __init__(self, url: str) -> None:
        parts = urllib.parse.urlsplit(url)
        self.conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60.0)

    def post(self, path: str, body: bytes) -> tuple[int, bytes]:
        self.conn.request("POST", path, body=body, headers={"content-type": "application/cbor"})
        r = self.conn.getresponse()
        return r.status, r.read()


class Submitter(threading.Thread):
    def __init__(self, url: str, txs: list[tuple[float, bytes]], start: float, per_tx: bool, max_batch: int) -> None:
        super().__init__(daemon=True)
        self.url, self.txs, self.start_at, self.per_tx, self.max_batch = url, txs, start, per_tx, max_batch
        self.sent_at: list[float] = [0.0] * len(txs)
        self.accepted = 0
        self.refused: dict[str, int] = defaultdict(int)
        self.requests = 0
        self.error: str | None = None

    def run(self) -> None:
        try:
            self._run(_Keepalive(self.url))
        except Exception as exc:  # noqa: BLE001 - reported in the result
            self.error = repr(exc)

    def _run(self, c: "_Keepalive") -> None:
        i, n = 0, len(self.txs)
        while time.time() < self.start_at:
            time.sleep(0.001)
        tick = 0
        while i < n:
            now = time.time()
            if self.per_tx:
                j = i + 1
            else:
                # every TICK: one request with what has come due (a late request carries more)
                tick += 1
                j = i
                while j < n and j - i < self.max_batch and self.txs[j][0] <= now:
                    j += 1
                if j == i:
                    time.sleep(max(0.0, self.start_at + tick * TICK - time.time()))
                    continue
            for k in range(i, j):
                self.sent_at[k] = now
            if self.per_tx:
                _, body = c.post("/tx", self.txs[i][1])
                results = [json.loads(body)]
            else:
                status, body = c.post("/txs", encode([raw for _, raw in self.txs[i:j]]))
                if status != 200:
                    raise RuntimeError(f"POST /txs answered {status}: {body[:300]!r}")
                results = json.loads(body)["results"]
            self.requests += 1
            for res in results:
                if "status" in res:
                    self.accepted += 1
                else:
                    self.refused[res["error"]] += 1
            i = j
            if not self.per_tx:
                tick = max(tick, int((time.time() - self.start_at) / TICK))
                time.sleep(max(0.0, self.start_at + tick * TICK - time.time()))


def _whole_slots(start: float, end: float, a_slot_start: float, slot: float) -> tuple[float, float]:
    """The widest run of whole slots inside [start, end). Counting the blocks of the slots that
    start in an arbitrary window of ~13 s and dividing by its length was off by up to one block in
    13 (a window of 13.4 s holds 13 or 14 slot starts), which moved the figure by ±7 % run to run."""
    first = a_slot_start + math.ceil((start - a_slot_start) / slot - 1e-9) * slot
    last = a_slot_start + math.floor((end - a_slot_start) / slot + 1e-9) * slot
    return first, max(first, last)


def drain(net: Devnet, watcher: Watcher, timeout: float) -> bool:
    """Wait until no node holds a pending transaction and the highest head any had then is
    irreversible on node 0.

    Every node's mempool, not node 0's alone: a transfer stays in the mempool of the node whose RPC
    accepted it until that node applies a block with it, while node 0 may not have it yet (under
    overload it can wait in node 0's admission queue). Watching node 0 only, 2 of 24 runs at 2,300
    offered ended too early (one counted 410 of 34,500 transfers as never irreversible, yet all
    four stores held every one of them). A node that kept a transaction of its own (equivocation
    evidence, which an honest devnet does not produce) makes the run time out and report "not
    drained"."""
    deadline = time.monotonic() + timeout
    target = None
    while time.monotonic() < deadline:
        if target is None:
            heads = [net.head(i) for i in range(len(net.nodes))]
            if all(h is not None and h["mempool"] == 0 for h in heads):
                target = max(h["height"] for h in heads)
        if target is not None and watcher.lib >= target:
            return True
        time.sleep(0.2)
    return False


def propagation(net: Devnet, since: float, until: float) -> dict:
    """Per (block, receiver) delays from the logs, split at ``since`` (load start)."""
    produced: dict[tuple[int, int], tuple[float, int]] = {}
    received: dict[tuple[int, int], list[float]] = defaultdict(list)
    for node in net.nodes:
        text = node.log.read_text()
        for m in PRODUCED.finditer(text):
            produced[(int(m.group(2)), int(m.group(3)))] = (stamp(m.group(1)), int(m.group(4)))
        for m in RECEIVED.finditer(text):
            received[(int(m.group(2)), int(m.group(3)))].append(stamp(m.group(1)))
    idle, loaded, idle_all, loaded_all, sizes = [], [], [], [], []
    for block, (t0, txs) in produced.items():
        got = received.get(block, [])
        if not got or t0 > until:
            continue
        delays = [(t - t0) * 1000 for t in got]
        if t0 < since:
            if txs:
                continue  # the funding blocks
            idle += delays
            if len(got) == len(net.nodes) - 1:
                idle_all.append(max(delays))
        else:
            loaded += delays
            sizes.append(txs)
            if len(got) == len(net.nodes) - 1:
                loaded_all.append(max(delays))
    r = lambda v: None if v is None else round(v)  # noqa: E731
    return {"idle_blocks": len(idle_all), "idle_p50_ms": r(_pct(idle, 0.5)), "idle_max_ms": r(max(idle, default=None)),
            "loaded_blocks": len(loaded_all), "loaded_txs_per_block_mean": round(statistics.mean(sizes)) if sizes else 0,
            "loaded_p50_ms": r(_pct(loaded, 0.5)), "loaded_p99_ms": r(_pct(loaded, 0.99)),
            "loaded_max_ms": r(max(loaded, default=None)),
            "loaded_all_nodes_p50_ms": r(_pct(loaded_all, 0.5)), "loaded_all_nodes_max_ms": r(max(loaded_all, default=None))}


def run(rate: int, seconds: float, senders: int, nodes: int, slot_ms: int, per_tx: bool, max_batch: int,
        keep: Path | None, profile: bool) -> dict:
    count = int(rate * seconds)
    sender_keys = [key(f"net-sender{i}") for i in range(senders)]
    with tempfile.TemporaryDirectory(prefix="bench-net-") as tmp:
        root = keep or Path(tmp)
        root.mkdir(parents=True, exist_ok=True)
        # A plain devnet genesis (each producer key funded); the senders are funded by transfers
        # from the producers' accounts before the measured window.
        genesis = make_genesis(root, nodes, slot_ms, {})
        network = load_genesis(genesis).network  # signatures are bound to this genesis
        valid_until = int(time.time() * 1000) + 3_600_000
        producer_keys = [read_key(root / "g" / "keys" / f"producer-{i}.key") for i in range(nodes)]
        funding: list[list[bytes]] = [[] for _ in range(nodes)]
        for s, k in enumerate(sender_keys):
            j = s % nodes
            funding[j].append(Transaction.create(
                producer_keys[j], network, "transfer", p.Transfer(to=address_of(k.public_key), amount=FUND),
                nonce=len(funding[j]) + 1, fee=10_000, valid_until=valid_until).raw)
        t_sign = time.perf_counter()
        signed = sign_transfers(network, sender_keys, count, valid_until)
        sign_s = time.perf_counter() - t_sign
        hashes = [hashlib.sha256(raw).digest() for _, raw in signed]
        net = Devnet(root, genesis, nodes)
        if profile:
            (root / "prof").mkdir(exist_ok=True)
        try:
            net.start(profile=root / "prof" if profile else None)
            net.wait_ready(min_height=2)
            watcher = Watcher(net.nodes[0].url)
            watcher.start()
            for j in range(nodes):
                for at in range(0, len(funding[j]), 100):
                    r = net.client.post(f"{net.nodes[j].url}/txs", content=encode(funding[j][at:at + 100]),
                                        headers={"content-type": "application/cbor"}, timeout=60)
                    assert r.status_code == 200 and r.json()["refused"] == 0, r.text[:500]
                    time.sleep(0.05)
            if not drain(net, watcher, 60):
                raise RuntimeError("the funding transfers did not become irreversible within 60 s")
            time.sleep(2 * slot_ms / 1000)  # a few idle blocks for the propagation baseline
            start = time.time() + 0.2
            per_node: list[list[tuple[float, bytes]]] = [[] for _ in range(nodes)]
            index: list[list[int]] = [[] for _ in range(nodes)]
            for i, (s, raw) in enumerate(signed):
                per_node[s % nodes].append((start + i / rate, raw))
                index[s % nodes].append(i)
            subs = [Submitter(net.nodes[j].url, per_node[j], start, per_tx, max_batch) for j in range(nodes)]
            cpu0 = [cpu_seconds(n.proc.pid) for n in net.nodes] + [cpu_seconds()]
            threads0 = [thread_cpu_seconds(n.proc.pid) for n in net.nodes]
            for s in subs:
                s.start()
            for s in subs:
                s.join()
            last_sent = time.time()
            cpu_loaded = sum(cpu_seconds(n.proc.pid) for n in net.nodes) + cpu_seconds() - sum(cpu0)
            errors = [s.error for s in subs if s.error]
            drained = drain(net, watcher, 60)
            cpu1 = [cpu_seconds(n.proc.pid) for n in net.nodes] + [cpu_seconds()]
            threads1 = [thread_cpu_seconds(n.proc.pid) for n in net.nodes]
            loop_cpu = sum(t1[0] - t0[0] for t0, t1 in zip(threads0, threads1))
            worker_cpu = sum(t1[1] - t0[1] for t0, t1 in zip(threads0, threads1))
            mempools = [(net.head(i) or {}).get("mempool") for i in range(nodes)]
            time.sleep(2 * TICK)
            watcher.stop.set()
            watcher.join()
            # which block holds each transfer (node 0's canonical chain)
            where: dict[bytes, int] = {}
            block_txs: dict[int, int] = {}
            block_time: dict[int, float] = {}
            for height in range(1, watcher.lib + 1):
                b = net.client.get(f"{net.nodes[0].url}/blocks/{height}").json()
                block_txs[height] = b["transactions"]
                block_time[height] = b["timestamp"] / 1000
                for h in b["tx_hashes"]:
                    where[bytes.fromhex(h)] = height
            sent_at = [0.0] * count
            for j, s in enumerate(subs):
                for k, i in enumerate(index[j]):
                    sent_at[i] = s.sent_at[k]
            latencies, included = [], []
            for i, h in enumerate(hashes):
                height = where.get(h)
                if height is not None and height in watcher.final_at and sent_at[i]:
                    latencies.append(watcher.final_at[height] - sent_at[i])
                    if height in watcher.head_at:
                        included.append(watcher.head_at[height] - sent_at[i])
            final_count = len(latencies)
            first_sent = min(t for t in sent_at if t) if any(sent_at) else start
            last_final = max((watcher.final_at[where[h]] for h in hashes if h in where and where[h] in watcher.final_at),
                             default=first_sent)
            window = _whole_slots(first_sent + 2.0, last_sent, block_time.get(1, first_sent), slot_ms / 1000)
            in_window = sum(n for hgt, n in block_txs.items() if window[0] <= block_time[hgt] < window[1])
            sustained = in_window / (window[1] - window[0]) if window[1] > window[0] else 0.0
            prop = propagation(net, start, last_sent)
        finally:
            net.close()
        if profile:
            for f in sorted((root / "prof").glob("*.prof")):
                print(f"# profile of {f.stem}: {f}", file=sys.stderr)
    accepted = sum(s.accepted for s in subs)
    refused: dict[str, int] = defaultdict(int)
    for s in subs:
        for k, v in s.refused.items():
            refused[k] += v
    r = lambda v: None if v is None else round(v, 2)  # noqa: E731
    return {"benchmark": "chain_network", "nodes": nodes, "slot_ms": slot_ms, "mode": "per_tx" if per_tx else "batch",
            "offered_tx_per_s": rate if not per_tx else None, "transfers": count, "senders": senders,
            "accepted": accepted, "refused": dict(refused), "errors": errors, "requests": sum(s.requests for s in subs),
            "submit_s": round(last_sent - first_sent, 2), "submitted_tx_per_s": round(accepted / max(1e-9, last_sent - first_sent)),
            "irreversible": final_count, "drained": drained,
            "sustained_tx_per_s": round(sustained), "end_to_end_tx_per_s": round(final_count / max(1e-9, last_final - first_sent)),
            "target_tx_per_s": TARGET,
            "latency_p50_s": r(_pct(latencies, 0.5)), "latency_p99_s": r(_pct(latencies, 0.99)),
            "latency_max_s": r(max(latencies, default=None)), "inclusion_p50_s": r(_pct(included, 0.5)),
            "propagation": prop,
            # CPU of the load (first submission to drained), per accepted transfer: the 4 nodes, then this process.
            # The other sessions' processes on this machine are not counted (they show as cores not busy).
            "cpu_ms_per_tx_nodes": round((sum(cpu1[:-1]) - sum(cpu0[:-1])) * 1000 / max(1, accepted), 3),
            "cpu_ms_per_tx_node_event_loops": round(loop_cpu * 1000 / max(1, accepted), 3),
            "cpu_ms_per_tx_node_worker_threads": round(worker_cpu * 1000 / max(1, accepted), 3),
            "cpu_ms_per_tx_client": round((cpu1[-1] - cpu0[-1]) * 1000 / max(1, accepted), 3),
            "cpu_cores_busy_while_submitting": round(cpu_loaded / max(1e-9, last_sent - start), 2),
            "sign_s": round(sign_s, 1), "mempools_after": mempools}


def table(results: list[dict], median: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    t = Table(title=f"Chain network: {median['nodes']} nodes, {median['slot_ms']} ms slots, {median['mode']} submission "
                    f"({len(results)} run(s), median by sustained tx/s)", header_style="bold")
    t.add_column("figure")
    t.add_column("median", justify="right")
    t.add_column("range", justify="right")
    rows = [("offered tx/s", "offered_tx_per_s"), ("submitted tx/s (accepted by RPC)", "submitted_tx_per_s"),
            ("sustained tx/s (in blocks while loaded)", "sustained_tx_per_s"),
            ("end to end tx/s (first submit → last irreversible)", "end_to_end_tx_per_s"),
            ("submit → irreversible p50 (s)", "latency_p50_s"), ("submit → irreversible p99 (s)", "latency_p99_s"),
            ("submit → irreversible max (s)", "latency_max_s"), ("submit → in a block p50 (s)", "inclusion_p50_s"),
            ("CPU ms per transfer, 4 nodes", "cpu_ms_per_tx_nodes"),
            ("  of which the nodes' event loops (RPC, p2p, asyncio)", "cpu_ms_per_tx_node_event_loops"),
            ("  of which the nodes' worker threads (chain work)", "cpu_ms_per_tx_node_worker_threads"),
            ("CPU ms per transfer, this client", "cpu_ms_per_tx_client"),
            ("cores busy while submitting (nodes + client, of 2)", "cpu_cores_busy_while_submitting")]
    for label, field in rows:
        vals = [x[field] for x in results if x[field] is not None]
        t.add_row(label, "-" if median[field] is None else str(median[field]), f"{min(vals)}–{max(vals)}" if vals else "")
    for label, field in [("propagation idle p50 (ms)", "idle_p50_ms"), ("propagation loaded p50 (ms)", "loaded_p50_ms"),
                         ("propagation loaded p99 (ms)", "loaded_p99_ms"), ("propagation loaded, to all 3 nodes, p50 (ms)", "loaded_all_nodes_p50_ms"),
                         ("transfers per loaded block (mean)", "loaded_txs_per_block_mean")]:
        vals = [x["propagation"][field] for x in results if x["propagation"][field] is not None]
        t.add_row(label, str(median["propagation"][field]), f"{min(vals)}–{max(vals)}" if vals else "")
    complete = all(x["drained"] and x["irreversible"] == x["transfers"] for x in results)  # in every run
    met = median["sustained_tx_per_s"] >= TARGET and complete
    t.caption = (f"target ≥ {TARGET:,} tx/s sustained: {'met' if met else 'NOT met'}; irreversible "
                 f"{median['irreversible']:,}/{median['transfers']:,}, refused {median['refused'] or 0}, "
                 f"{'drained' if median['drained'] else 'NOT drained within 60 s'}")
    Console(stderr=True).print(t)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=int, default=OFFERED, help=f"offered transfers/s (batch mode; default {OFFERED})")
    parser.add_argument("--seconds", type=float, default=15.0, help="how long the load is offered")
    parser.add_argument("--senders", type=int, default=2000)
    parser.add_argument("--nodes", type=int, default=4)
    parser.add_argument("--slot-ms", type=int, default=1000)
    parser.add_argument("--max-batch", type=int, default=2000, help="transfers per POST /txs at most")
    parser.add_argument("--per-tx", action="store_true", help="one POST /tx per transfer instead of POST /txs batches")
    parser.add_argument("--repeats", type=int, default=1, help="runs; the median and range are reported")
    parser.add_argument("--keep", type=Path, help="keep genesis, node data and logs in this directory")
    parser.add_argument("--profile", action="store_true", help="run each node under cProfile (all threads); stats in KEEP/runN/prof/ (use with --keep)")
    args = parser.parse_args()
    if args.profile and not args.keep:
        parser.error("--profile writes its statistics under --keep DIR")
    results = []
    for i in range(args.repeats):
        r = run(args.rate, args.seconds, args.senders, args.nodes, args.slot_ms, args.per_tx, args.max_batch,
                args.keep / f"run{i}" if args.keep else None, args.profile)
        print(f"run {i + 1}/{args.repeats}: sustained {r['sustained_tx_per_s']:,} tx/s, irreversible "
              f"{r['irreversible']:,}/{r['transfers']:,}{'' if r['drained'] else ' (not drained)'}, refused "
              f"{sum(r['refused'].values())}, p99 {r['latency_p99_s']} s, {r['cpu_ms_per_tx_nodes']} ms CPU a transfer",
              file=sys.stderr, flush=True)
        results.append(r)
    results.sort(key=lambda x: x["sustained_tx_per_s"])
    median = dict(results[len(results) // 2])
    median["repeats"] = args.repeats
    median["sustained_tx_per_s_range"] = [results[0]["sustained_tx_per_s"], results[-1]["sustained_tx_per_s"]]
    p99 = sorted(x["latency_p99_s"] for x in results if x["latency_p99_s"] is not None)
    median["latency_p99_s_range"] = [p99[0], p99[-1]] if p99 else None
    table(results, median)
    print(json_line(median), flush=True)


if __name__ == "__main__":
    main()

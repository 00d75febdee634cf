"""Deterministic simulation of a whole DPoS network (105 producers by default) in one process.

A discrete-event simulator: one heap of events ordered by (time in ms, sequence number), a simulated
clock, a network that delivers each produced block to every other node after a latency drawn from a
seeded ``random.Random``, drops it with probability ``--loss`` and never delivers across a partition.
Producers act at the start of their slots (``ChainNode.produce``'s rule: the slot's owner by the
schedule of the node's own head, on that head); an absent producer's slot stays empty and the next
slot's owner produces on what it has, which the protocol records as a miss. Offline nodes neither
produce nor receive; a node that receives a block whose parent it lacks asks the sender for the
missing ancestors (one round trip), which is how it catches up after loss, downtime or a partition.

Every block is checked by the real protocol code (``apply_block`` / ``build_block``, fork choice and
finality from ``hub.chain.protocol.forkchoice``). Because the transition is a pure function of
(state at the parent, block), it is computed once per block and shared by all nodes keyed by the
block hash (see ``_simledger.py``); this is what lets 105 nodes run a day of chain time in minutes.

Elections are exercised: every genesis producer and ``--extra-candidates`` more nodes register as
candidates, ``--voters`` stake holders vote (twice: early, and again at half time with different
choices), so rounds end with elections that have quorum, and producers that missed slots are banned.

Prints one JSON line (deterministic for a seed except ``wall_s`` and ``speedup``) and a summary on
stderr.
"""

from __future__ import annotations

import argparse
import hashlib
import heapq
import json
import random
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _simledger import Ledger, SimNode  # noqa: E402

from hub.chain.protocol import dpos  # noqa: E402
from hub.chain.protocol.constants import HOUR, RUFF  # noqa: E402
from hub.chain.protocol.genesis import Genesis  # noqa: E402
from hub.chain.protocol.tx import Transaction  # noqa: E402
from hub.crypto.address import address_of, encode_address  # noqa: E402
from hub.crypto.keys import PrivateKey  # noqa: E402

CHAIN = "simnet"
GENESIS_TIME = 1_700_000_000_000
SLOT, DELIVER, SYNC, SUBMIT, ANNOUNCE = 0, 1, 2, 3, 4
TX_LIFETIME = 30 * 60 * 1000


def _key(seed: int, what: str, i: int) -> PrivateKey:
    return PrivateKey(hashlib.sha256(f"sim-{seed}-{what}-{i}".encode()).digest())


def _percentile(counter: Counter, q: float) -> int:
    total = sum(counter.values())
    if not total:
        return 0
    rank = q * total
    seen = 0
    for value in sorted(counter):
        seen += counter[value]
        if seen >= rank:
            return value
    return max(counter)


class Simulation:
    def __init__(self, producers: int = 105, hours: float = 24, seed: int = 1, latency: tuple[int, int] = (20, 200),
                 loss: float = 0.01, offline: int = 3, offline_hours: float = 2.0,
                 partition: tuple[float, float, float] | None = None, voters: int = 8,
                 extra_candidates: int = 10, slot_ms: int = 9000) -> None:
        self.seed, self.hours, self.loss, self.latency = seed, hours, loss, latency
        self.rng = random.Random(seed)
        self.producer_keys = [_key(seed, "producer", i) for i in range(producers)]
        self.extra_keys = [_key(seed, "candidate", i) for i in range(extra_candidates)]
        self.voter_keys = [_key(seed, "voter", i) for i in range(voters)]
        balances = {encode_address(address_of(k.public_key)): 1000 * RUFF for k in self.producer_keys + self.extra_keys}
        for i, k in enumerate(self.voter_keys):
            balances[encode_address(address_of(k.public_key))] = (100_000 + 10_000 * (voters - i)) * RUFF
        self.genesis = Genesis(chain_id=CHAIN, genesis_time=GENESIS_TIME,
                               producers=[k.public_key.hex() for k in self.producer_keys], balances=balances,
                               constants={"PRODUCERS": producers, "BLOCK_INTERVAL": slot_ms})
        self.ledger = Ledger(self.genesis)
        self.c = self.ledger.c
        node_keys = self.producer_keys + self.extra_keys
        self.nodes = [SimNode(i, k, self.ledger) for i, k in enumerate(node_keys)]
        self.node_of_pk = {k.public_key: n for k, n in zip(node_keys, self.nodes)}
        self.end = GENESIS_TIME + int(hours * HOUR)
        # offline producers: distinct genesis producers, each down for offline_hours at a seeded time
        self.offline: dict[int, tuple[int, int]] = {}
        span = int(hours * HOUR)
        down = int(offline_hours * HOUR)
        for i in sorted(self.rng.sample(range(producers), min(offline, producers))):
            start = GENESIS_TIME + self.rng.randrange(span // 10, max(span // 10 + 1, span - down - span // 10))
            self.offline[i] = (start, min(start + down, self.end))
        # partition: a seeded fraction of all nodes cannot reach the rest in [start, end)
        self.partition = None
        self.side: set[int] = set()
        if partition:
            start_h, end_h, fraction = partition
            self.partition = (GENESIS_TIME + int(start_h * HOUR), GENESIS_TIME + int(end_h * HOUR))
            self.side = set(self.rng.sample(range(len(self.nodes)), round(fraction * len(self.nodes))))
        self.pending: list[Transaction] = []
        self.events: list[tuple] = []
        self.seq = 0
        self.stats = Counter()
        self.distance = Counter()
        self.offline_owned = Counter()  # slots whose owner (by the online nodes' best head) was offline

    # --- environment -------------------------------------------------------------------------------
    def online(self, i: int, t: int) -> bool:
        w = self.offline.get(i)
        return w is None or not (w[0] <= t < w[1])

    def reachable(self, a: int, b: int, t: int) -> bool:
        p = self.partition
        if p is None or not (p[0] <= t < p[1]):
            return True
        return (a in self.side) == (b in self.side)

    def push(self, t: int, kind: int, *data) -> None:
        self.seq += 1
        heapq.heappush(self.events, (t, self.seq, kind, data))

    # --- transactions ------------------------------------------------------------------------------
    def _wave(self, t: int, kind: str, shift: int = 0) -> list[Transaction]:
        cands = self.producer_keys + self.extra_keys
        until = t + TX_LIFETIME
        if kind == "register":
            return [Transaction.create(k, self.genesis.network, "register_candidate", {"name": f"c{i:04d}"}, nonce=1,
                                       fee=self.c.CANDIDATE_FEE + RUFF // 100, valid_until=until)
                    for i, k in enumerate(cands)]
        n, per = len(cands), min(self.c.MAX_VOTES, len(cands))
        step = max(1, -(-n // max(1, len(self.voter_keys))))
        txs = []
        for v, k in enumerate(self.voter_keys):
            chosen = sorted({address_of(cands[(v * step + j + shift) % n].public_key) for j in range(per)})
            txs.append(Transaction.create(k, self.genesis.network, "vote", {"candidates": chosen}, nonce=1 + (shift > 0),
                                          fee=RUFF // 100, valid_until=until))
        return txs

    # --- running -----------------------------------------------------------------------------------
    def run(self) -> dict:
        wall = time.perf_counter()
        interval = self.c.BLOCK_INTERVAL
        span = self.end - GENESIS_TIME
        if self.voter_keys:
            self.push(GENESIS_TIME + interval // 2, SUBMIT, self._wave(GENESIS_TIME, "register"))
            self.push(GENESIS_TIME + span // 20, SUBMIT, "vote", 0)
            self.push(GENESIS_TIME + span // 2, SUBMIT, "vote", len(self.producer_keys) // 3)
        self.push(GENESIS_TIME + interval, SLOT, 1)
        for i, (_, back) in sorted(self.offline.items()):
            if back < self.end:
                self.push(back, ANNOUNCE, i)  # a node that comes back syncs from its best peer
        for n in self.nodes:  # head announcements at the end, so a lost last block is fetched
            self.push(self.end + interval, ANNOUNCE, n.index)
        drain_until = self.end + 5 * interval
        while self.events:
            t, _, kind, data = heapq.heappop(self.events)
            if t > drain_until:
                break
            if kind == SLOT:
                self._slot(t, data[0])
            elif kind == DELIVER:
                self._deliver(t, *data)
            elif kind == SYNC:
                node_i, blocks = data
                if self.online(node_i, t):
                    for b in blocks:
                        self._receive(self.nodes[node_i], b, t, None)
            elif kind == ANNOUNCE:
                self._catch_up(t, data[0])
            elif kind == SUBMIT:
                if data[0] == "vote":
                    self.pending += self._wave(t, "vote", data[1])
                else:
                    self.pending += data[0]
        return self.report(time.perf_counter() - wall)

    def _slot(self, t: int, slot: int) -> None:
        if t >= self.end:
            return
        self.push(t + self.c.BLOCK_INTERVAL, SLOT, slot + 1)
        self.pending = [tx for tx in self.pending if tx.valid_until >= t]
        ledger = self.ledger
        online = [n for n in self.nodes if self.online(n.index, t)]
        # head-LIB distance of every online node at the slot boundary
        for n in online:
            self.distance[ledger.heads[n.head].height - n.lib] += 1
        best = max(online, key=lambda n: (ledger.heads[n.head].height, [-b for b in n.head]))
        owner_best = dpos.slot_owner(ledger.sched[best.head], slot)
        owner_node = self.node_of_pk.get(owner_best)
        if owner_node is None or not self.online(owner_node.index, t):
            self.offline_owned[owner_best] += 1
        heads_seen: set[bytes] = set()
        for n in online:
            if n.head in heads_seen:
                continue
            heads_seen.add(n.head)
            owner = self.node_of_pk.get(dpos.slot_owner(ledger.sched[n.head], slot))
            if owner is None or owner.head != n.head or not self.online(owner.index, t):
                continue
            block = owner.produce(slot, self.pending, t)
            if block is None:
                continue
            self.stats["produced"] += 1
            self._gossip(owner.index, block, t)

    def _gossip(self, sender: int, block, t: int) -> None:
        rng, lo, hi, loss = self.rng, self.latency[0], self.latency[1], self.loss
        for n in self.nodes:
            if n.index == sender:
                continue
            if not self.reachable(sender, n.index, t):
                self.stats["partitioned"] += 1
                continue
            if rng.random() < loss:
                self.stats["lost"] += 1
                continue
            self.push(t + rng.randint(lo, hi), DELIVER, n.index, block, sender)

    def _catch_up(self, t: int, node_i: int) -> None:
        """Handshake with peers: fetch the best reachable online peer's chain (one round trip)."""
        node, ledger = self.nodes[node_i], self.ledger
        if not self.online(node_i, t):
            return
        peers = [n for n in self.nodes if n is not node and self.online(n.index, t) and self.reachable(node_i, n.index, t)]
        if not peers:
            return
        best = max(peers, key=lambda n: (ledger.heads[n.head].height, [-b for b in n.head]))
        chain = []
        h = best.head
        while h not in node.known:
            chain.append(ledger.blocks[h])
            h = ledger.parent[h]
        if chain:
            chain.reverse()
            self.stats["catch_ups"] += 1
            self.push(t + self.rng.randint(*self.latency) + self.rng.randint(*self.latency), SYNC, node_i, chain)

    def _deliver(self, t: int, node_i: int, block, sender: int) -> None:
        if not self.online(node_i, t):
            self.stats["offline_drops"] += 1
            return
        self._receive(self.nodes[node_i], block, t, sender)

    def _receive(self, node: SimNode, block, t: int, sender: int | None) -> None:
        status = node.receive(block, t)
        self.stats[status] += 1
        if status == "orphan" and sender is not None and self.reachable(node.index, sender, t):
            # ask the sender for the ancestors we lack; they arrive one round trip later
            ledger, chain = self.ledger, []
            h = block.header.prev_hash
            while h not in node.known:
                chain.append(ledger.blocks[h])
                h = ledger.parent[h]
            chain.reverse()
            chain.append(block)
            self.stats["syncs"] += 1
            rtt = self.rng.randint(*self.latency) + self.rng.randint(*self.latency)
            self.push(t + rtt, SYNC, node.index, chain)

    # --- report ------------------------------------------------------------------------------------
    def report(self, wall_s: float) -> dict:
        ledger, c = self.ledger, self.c
        t_end = self.end + 5 * c.BLOCK_INTERVAL
        online = [n for n in self.nodes if self.online(n.index, t_end - 1)]
        heads = sorted({n.head for n in online})
        converged = len(heads) == 1 and len({n.lib for n in online}) == 1
        final = max(online, key=lambda n: (ledger.heads[n.head].height, [-b for b in n.head])).head
        canon = []
        h = final
        while h != ledger.genesis_hash:
            canon.append(h)
            h = ledger.parent[h]
        canon.reverse()
        canon_set = set(canon)
        ledger.move_to(final)
        state = ledger.state
        head = ledger.heads[final]
        misses = dict(state.items("miss"))
        slots = head.slot
        # elections and bans along the final chain
        elections = []
        current = ledger.sched[ledger.genesis_hash]
        ban_events = 0
        banned: set[bytes] = set()
        for h in canon:
            for name, key, value in ledger.diff[h][0]:
                if name == "ban" and value is not None:
                    ban_events += 1
                    banned.add(key)
            height = ledger.heads[h].height
            if dpos.is_round_end(height, c):
                elected = ledger.sched[h]
                if set(elected) != set(current):
                    added = len(set(elected) - set(current))
                    removed = len(set(current) - set(elected))
                    elections.append({"round": dpos.round_of(height, c), "size": len(elected), "added": added,
                                      "removed": removed})
                current = elected
        # finality: time from a block's slot until a node first held it irreversible
        finality = Counter()
        for n in self.nodes:
            for t, lib_hash in n.lib_times:
                finality[(t - ledger.heads[lib_hash].timestamp) // 1000] += 1
        side_blocks = len(ledger.blocks) - len(canon_set)
        offline_addr = {address_of(self.producer_keys[i].public_key) for i in self.offline}
        offline_owned = {encode_address(address_of(pk)): k for pk, k in sorted(self.offline_owned.items())}
        max_miss = max(misses.values()) if misses else 0
        result = {
            "benchmark": "sim_network",
            "seed": self.seed,
            "producers": c.PRODUCERS,
            "nodes": len(self.nodes),
            "hours": self.hours,
            "latency_ms": list(self.latency),
            "loss": self.loss,
            "offline": {encode_address(address_of(self.producer_keys[i].public_key)):
                        [(a - GENESIS_TIME) / HOUR, (b - GENESIS_TIME) / HOUR] for i, (a, b) in sorted(self.offline.items())},
            "partition": None if self.partition is None else {
                "hours": [(self.partition[0] - GENESIS_TIME) / HOUR, (self.partition[1] - GENESIS_TIME) / HOUR],
                "side_nodes": len(self.side),
                "side_producers": sum(1 for i in self.side if i < c.PRODUCERS)},
            "slots": slots,
            "blocks": head.height,
            "rounds": head.height // c.PRODUCERS,
            "blocks_produced": self.stats["produced"],
            "missed_slots": sum(misses.values()),
            "missed_slots_check": slots - head.height,
            "missed_by_offline_producers": sum(v for a, v in misses.items() if a in offline_addr),
            "max_missed_per_producer": max_miss,
            "slots_owned_by_offline_nodes": offline_owned,
            "misses_by_producer": {encode_address(a): v for a, v in sorted(misses.items())},
            "forks": {"reorganisations": sum(n.reorgs for n in self.nodes),
                      "max_reorg_depth": max(n.max_reorg for n in self.nodes),
                      "refused_reorgs": sum(n.refused for n in self.nodes),
                      "side_blocks": side_blocks,
                      "side_receipts": self.stats["side"]},
            "head_lib_distance": {"max": max(self.distance) if self.distance else 0,
                                  "p99": _percentile(self.distance, 0.99),
                                  "p50": _percentile(self.distance, 0.50)},
            "finality_s": {"p50": _percentile(finality, 0.5), "p99": _percentile(finality, 0.99),
                           "max": max(finality) if finality else 0},
            "lib": head.height and ledger.lib_at[final],
            "converged": converged,
            "online_nodes_at_end": len(online),
            "safety_violations": sum(n.violations for n in self.nodes),
            "elections": {"rounds_with_new_set": len(elections), "ban_events": ban_events,
                          "producers_banned": len(banned), "final_set_size": len(ledger.sched[final]),
                          "candidates": len(state.ns["cand"]), "voters": len(state.ns["vote"]),
                          "changes": elections[:40]},
            "network": {k: self.stats[k] for k in sorted(self.stats)},
            "applies": ledger.applies,
            "state_digest": state.digest().hex(),
            "wall_s": round(wall_s, 2),
            "speedup": round((self.end - GENESIS_TIME) / 1000 / max(wall_s, 1e-9)),
        }
        return result


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--producers", type=int, default=105)
    parser.add_argument("--hours", type=float, default=24.0, help="chain time to simulate")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--latency-ms", default="20,200", help="MIN,MAX one-way latency, uniform")
    parser.add_argument("--loss", type=float, default=0.01)
    parser.add_argument("--offline", type=int, default=3, help="producers that go offline (each once)")
    parser.add_argument("--offline-hours", type=float, default=2.0)
    parser.add_argument("--partition", default=None, help="START_H:END_H:FRACTION of nodes cut off")
    parser.add_argument("--voters", type=int, default=8, help="stake holders voting (0: no elections)")
    parser.add_argument("--extra-candidates", type=int, default=10)
    parser.add_argument("--quick", action="store_true", help="12 producers, 1 h, a partition, 1 offline")
    args = parser.parse_args(argv)
    if args.quick:
        args.producers, args.hours, args.offline, args.offline_hours = 12, 1.0, 1, 0.2
        args.extra_candidates = 3
        args.partition = args.partition or "0.4:0.6:0.25"
    return args


def simulation_from_args(args: argparse.Namespace) -> Simulation:
    lo, hi = (int(x) for x in args.latency_ms.split(","))
    partition = tuple(float(x) for x in args.partition.split(":")) if args.partition else None
    return Simulation(producers=args.producers, hours=args.hours, seed=args.seed, latency=(lo, hi), loss=args.loss,
                      offline=args.offline, offline_hours=args.offline_hours, partition=partition,
                      voters=args.voters, extra_candidates=args.extra_candidates)


def summary(r: dict) -> str:
    f, e, d = r["forks"], r["elections"], r["head_lib_distance"]
    return "\n".join([
        f"{r['producers']} producers, {r['nodes']} nodes, {r['hours']} h chain time in {r['wall_s']} s "
        f"(x{r['speedup']}), seed {r['seed']}",
        f"blocks {r['blocks']} in {r['slots']} slots, {r['rounds']} rounds; missed {r['missed_slots']} "
        f"(offline producers {r['missed_by_offline_producers']}, max per producer {r['max_missed_per_producer']})",
        f"forks: {f['reorganisations']} branch switches (max depth {f['max_reorg_depth']}), {f['side_blocks']} side "
        f"blocks, {f['refused_reorgs']} refused",
        f"head-LIB distance max {d['max']} p99 {d['p99']} p50 {d['p50']}; finality p50 {r['finality_s']['p50']} s "
        f"p99 {r['finality_s']['p99']} s",
        f"elections: {e['rounds_with_new_set']} rounds elected a new set, {e['producers_banned']} producers banned, "
        f"final set {e['final_set_size']}; converged {r['converged']}; safety violations {r['safety_violations']}",
    ])


def main(argv: list[str] | None = None) -> None:
    result = simulation_from_args(parse_args(argv)).run()
    print(summary(result), file=sys.stderr)
    print(json.dumps(result, sort_keys=True))


if __name__ == "__main__":
    main()

"""Apply a block of 10,000 transfers versus 10,000 bare Ed25519 verifications, same run.

Issue #5's target: ``apply_block`` at most 1.5 times the bare verifications (signature checks are
the floor of any node's cost). Two figures: *cold*, a block whose transactions this node has never
seen (every signature checked inside ``apply_block``), and *warm*, the usual case, where the
transactions passed through this node's mempool and their verified hashes are remembered.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import time

from _chainbench import GENESIS_TIME, PRODUCER, setup, transfers

from hub.chain.node.mempool import Mempool
from hub.chain.node.verify import preverify
from hub.chain.protocol.transition import apply_block, build_block
from hub.crypto import keys


def run(count: int, senders: int, repeats: int, pin: bool) -> dict:
    if pin and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})  # one core for every figure
    genesis, senders_keys = setup(senders)
    txs = transfers(genesis, senders_keys, count)
    base = genesis.state()
    producer_state = copy.deepcopy(base)
    block = build_block(producer_state, PRODUCER, 1, txs).applied.block
    assert len(block.txs) == count, "every transfer must fit in the block"
    messages = [(t.sender, t.signing_bytes(genesis.network), t.signature) for t in txs]
    pool = Mempool(genesis.network)
    for t in txs:
        pool.verify(t)
    bare, cold, warm, parallel = [], [], [], []
    for _ in range(repeats):
        start = time.perf_counter()
        for pk, msg, sig in messages:
            keys.verify(pk, msg, sig)
        bare.append(time.perf_counter() - start)
        state = copy.deepcopy(base)
        start = time.perf_counter()
        apply_block(state, block)
        cold.append(time.perf_counter() - start)
        state = copy.deepcopy(base)
        start = time.perf_counter()
        apply_block(state, block, pool.verify)
        warm.append(time.perf_counter() - start)
        assert state.head == producer_state.head
        if not pin:  # the node's receive path: signatures on every core, then apply_block
            state = copy.deepcopy(base)
            start = time.perf_counter()
            checked = preverify(block.txs, genesis.network, {})
            cache = set(checked.valid)
            apply_block(state, block, lambda t: t.hash in cache, checked.decoded)
            parallel.append(time.perf_counter() - start)
    med = lambda xs: sorted(xs)[len(xs) // 2]  # noqa: E731
    b, c, w = med(bare), med(cold), med(warm)
    extra = {} if pin else {"apply_cold_parallel_s": round(med(parallel), 3), "cold_parallel_ratio": round(med(parallel) / b, 2),
                            "cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()}
    return {"benchmark": "chain_apply_block", "transfers": count, "senders": senders, "repeats": repeats, "one_core": pin, **extra,
            "bare_verify_s": round(b, 3), "apply_cold_s": round(c, 3), "apply_warm_s": round(w, 3),
            "cold_ratio": round(c / b, 2), "warm_ratio": round(w / b, 2), "target_ratio": 1.5,
            "verify_per_s": round(count / b)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--transfers", type=int, default=10_000)
    parser.add_argument("--senders", type=int, default=1_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--all-cores", action="store_true", help="Do not pin to one core; adds the node's parallel path.")
    args = parser.parse_args()
    print(json.dumps(run(args.transfers, args.senders, args.repeats, not args.all_cores)))


if __name__ == "__main__":
    main()

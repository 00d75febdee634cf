"""Sustained transactions per second through mempool entry + block production + apply + SQLite commit.

One node, one producer, its store on disk (WAL, synchronous=NORMAL as in production). Clients'
signing is not counted (it happens on their machines); everything the node does is: decode, check
on mempool entry (signature included), order, build and apply each block, commit it.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

from _chainbench import GENESIS_TIME, PRODUCER, setup, transfers

from hub.chain.node.node import ChainNode


def run(count: int, senders: int) -> dict:
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    genesis, keys = setup(senders)
    raws = [t.raw for t in transfers(genesis, keys, count)]
    with tempfile.TemporaryDirectory() as tmp:
        node = ChainNode(Path(tmp), genesis, PRODUCER)
        start = time.perf_counter()
        for raw in raws:
            node.submit(raw, GENESIS_TIME)
        admitted = time.perf_counter()
        blocks = slot = 0
        while len(node.mempool):
            slot += 1
            node.produce(GENESIS_TIME + slot * node.constants.BLOCK_INTERVAL)
            blocks += 1
        done = time.perf_counter()
        assert node.state.nonce(next(iter(sorted(node.state.ns["acct"])))) >= 0
        included = sum(len(node.store.canonical_block(h).txs) for h in range(1, node.head.height + 1))
        node.close()
    assert included == count
    return {"benchmark": "chain_throughput", "transactions": count, "senders": senders, "blocks": blocks,
            "mempool_entry_per_s": round(count / (admitted - start)), "produce_apply_commit_per_s": round(count / (done - admitted)),
            "sustained_tx_per_s": round(count / (done - start)), "one_core": True}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--transactions", type=int, default=30_000)
    parser.add_argument("--senders", type=int, default=1_000)
    args = parser.parse_args()
    print(json.dumps(run(args.transactions, args.senders)))


if __name__ == "__main__":
    main()

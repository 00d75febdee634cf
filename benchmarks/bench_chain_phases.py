"""One node's CPU per transfer in each stage of its work, in one process on one core.

What the 4-node devnet benchmark (``bench_chain_network.py``) cannot show: it measures the whole
network, where four nodes and their threads share two cores and every stage costs more than
alone. Here a producer P and a follower F run in this process, pinned to one core, and for each
block of ``--block`` transfers the follower does what a node does with gossip and then with the
block, each stage timed with ``time.thread_time``:

* decode: the wire bytes into transactions (the strict CBOR check included);
* signature: the Ed25519 checks (libsodium; the floor of the chain's cost);
* mempool: admission of the checked transactions;
* receive: the producer's block applied, committed to SQLite, the mempool cleared of it;
* produce: the producer's side, building, signing and committing the block from its mempool.

Over a 4-node network each transfer is decoded, checked and admitted about four times, received
by about three nodes and produced by one, so these figures times those counts are the chain work
a transfer costs the network before networking, RPC and contention. The first block is a warm-up;
each figure is the best block's, in µs per transfer.
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
from hub.chain.protocol.tx import Transaction

STAGES = ("decode", "signature", "mempool", "receive", "produce")


def run(block: int, blocks: int) -> dict:
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    genesis, keys = setup(block)
    raws = [t.raw for t in transfers(genesis, keys, block * blocks)]
    clock = time.thread_time
    best = {stage: float("inf") for stage in STAGES}
    with tempfile.TemporaryDirectory() as tmp:
        producer = ChainNode(Path(tmp) / "producer", genesis, PRODUCER)
        follower = ChainNode(Path(tmp) / "follower", genesis, None)
        for i in range(blocks):
            batch = raws[i * block:(i + 1) * block]
            now = GENESIS_TIME + i * 1000 + 500
            producer.submit_many(batch, now)
            t0 = clock()
            txs = [Transaction.from_bytes(raw, follower.constants.MAX_TX_BYTES) for raw in batch]
            t1 = clock()
            assert all(follower.mempool.verify(tx) for tx in txs)
            t2 = clock()
            with follower.lock:
                for tx in txs:
                    follower.mempool.add(tx, follower.state, now)
            t3 = clock()
            made = producer.produce(GENESIS_TIME + (i + 1) * 1000)
            t4 = clock()
            assert made is not None and len(made.txs) == block
            follower.receive_block(made)
            t5 = clock()
            assert follower.head.hash == producer.head.hash and not len(follower.mempool)
            if i:  # the first block warms caches and imports
                for stage, spent in zip(STAGES, (t1 - t0, t2 - t1, t3 - t2, t5 - t4, t4 - t3)):
                    best[stage] = min(best[stage], spent / block * 1e6)
        producer.close()
        follower.close()
    return {"benchmark": "chain_phases", "transfers_per_block": block, "blocks": blocks, "one_core": True,
            **{f"{stage}_us_per_tx": round(v, 1) for stage, v in best.items()}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--block", type=int, default=2000, help="transfers per block")
    parser.add_argument("--blocks", type=int, default=5, help="blocks (the first is a warm-up)")
    args = parser.parse_args()
    if args.blocks < 2:
        parser.error("--blocks must be at least 2: the first block is a warm-up")
    print(json.dumps(run(args.block, args.blocks)))


if __name__ == "__main__":
    main()

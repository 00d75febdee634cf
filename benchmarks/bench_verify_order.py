"""Decoding and signature checks of a batch: each check between two decodes, or all back to back.

Why it is a benchmark: ``ChainNode.submit_many`` (every transaction a node admits, from its RPC or
from gossip) once decoded and checked each transaction in turn; it now decodes the whole batch,
then checks all the signatures. The work is the same; what changes is whether libsodium's tables
are still in the CPU caches when the next check starts. The VM this runs on changes speed from one
minute to the next, so the orders take turns on the same batches, one batch each, and the figure
is the median of their paired ratios.

Run: ``.venv/bin/python benchmarks/bench_verify_order.py`` (pinned to one core).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time

from _chainbench import setup, transfers

from hub.chain.protocol.transition import signature_verifier
from hub.chain.protocol.tx import Transaction


def interleaved(raws: list[bytes], verify) -> None:
    for raw in raws:
        verify(Transaction.from_bytes(raw))


def back_to_back(raws: list[bytes], verify) -> None:
    txs = [Transaction.from_bytes(raw) for raw in raws]
    for tx in txs:
        verify(tx)


def run(batch: int, rounds: int) -> dict:
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    genesis, keys = setup(batch)
    batches = [[t.raw for t in transfers(genesis, keys, batch, first_nonce=1 + i)] for i in range(4)]
    verify = signature_verifier(genesis.network)
    times: dict[str, list[float]] = {"interleaved": [], "back_to_back": []}
    for r in range(rounds):
        raws = batches[r % len(batches)]
        for name, fn in (("interleaved", interleaved), ("back_to_back", back_to_back)):
            t0 = time.thread_time()
            fn(raws, verify)
            times[name].append((time.thread_time() - t0) / batch * 1e6)
    ratios = [b / a for a, b in zip(times["interleaved"], times["back_to_back"])]
    return {"benchmark": "verify_order", "batch": batch, "rounds": rounds, "one_core": True,
            "interleaved_us_per_tx_median": round(statistics.median(times["interleaved"]), 1),
            "back_to_back_us_per_tx_median": round(statistics.median(times["back_to_back"]), 1),
            "back_to_back_over_interleaved_median": round(statistics.median(ratios), 3),
            "back_to_back_faster_in_rounds": sum(r < 1 for r in ratios)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=1000, help="transactions per batch")
    parser.add_argument("--rounds", type=int, default=40, help="batches per order")
    args = parser.parse_args()
    print(json.dumps(run(args.batch, args.rounds)))


if __name__ == "__main__":
    main()

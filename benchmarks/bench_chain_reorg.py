"""Undo records versus state snapshots for reorganisations (why the node keeps undo records).

A state of ``--accounts`` accounts; a block of 1,000 transfers. Snapshot approach: copy the ledger
before each block (what reverting by snapshot needs). Undo approach: the block's undo record (old
values of the keys it touched), kept per block, and reverting with it.
"""

from __future__ import annotations

import argparse
import json
import time
import tracemalloc

from _chainbench import PRODUCER, setup, transfers

from hub.chain.protocol.transition import build_block
from hub.crypto.encoding import encode


def run(accounts: int, txs: int) -> dict:
    genesis, keys = setup(accounts)
    state = genesis.state()
    block_txs = transfers(genesis, keys[:txs], txs)
    tracemalloc.start()
    start = time.perf_counter()
    snapshot = {name: dict(table) for name, table in state.ns.items()}
    snap_s = time.perf_counter() - start
    snap_bytes = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    del snapshot
    parent = state.head
    applied = build_block(state, PRODUCER, 1, block_txs).applied
    undo_bytes = len(encode([list(u) for u in applied.undo]))
    start = time.perf_counter()
    state.revert(applied.undo, parent)
    revert_s = time.perf_counter() - start
    return {"benchmark": "chain_reorg_approach", "accounts": accounts, "block_txs": txs,
            "snapshot_ms": round(snap_s * 1000, 2), "snapshot_mb": round(snap_bytes / 2**20, 2),
            "undo_record_kb": round(undo_bytes / 1024, 1), "undo_revert_ms": round(revert_s * 1000, 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=100_000)
    parser.add_argument("--txs", type=int, default=1_000)
    args = parser.parse_args()
    print(json.dumps(run(args.accounts, args.txs)))


if __name__ == "__main__":
    main()

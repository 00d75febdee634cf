"""State proofs at scale: proof size and verification time at ``--accounts`` accounts, and what the
state root costs ``apply_block`` on a block of 10,000 transfers from 10,000 distinct senders (the
worst case for the root: every transfer changes its own sender's bucket).

Figures (one core, medians): filling the ledger and building the tree (what a restart pays, here
with generated rows instead of SQLite's), the tree alone from the ledger in memory, proof bytes
(deterministic CBOR of the proof map; the JSON the RPC sends is about twice that, hex),
verification and proof time per key (present and absent keys), the bucket occupancy, and for the
block: bare Ed25519 verification of its 10,000 signatures, ``apply_block`` on unknown transactions
(signatures checked inside), the root's part of it (updating the tree with the block's changes and
rehashing), and reverting the block. ``--bits`` tries another bucket count (the protocol's is
``statetree.BUCKET_BITS``; any other gives different roots: a comparison, never a node setting).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import resource
import time

from _chainbench import CHAIN, PRODUCER, setup, transfers

from hub.chain.protocol import statetree
from hub.chain.protocol.transition import apply_block, build_block
from hub.crypto import keys
from hub.crypto.encoding import encode


def _use_bits(bits: int) -> None:
    statetree.BUCKET_BITS = bits
    statetree.EMPTY = statetree._empty_hashes()
    statetree.EMPTY_ROOT = statetree.EMPTY[0]


def _median(xs: list[float]) -> float:
    return sorted(xs)[len(xs) // 2]


def run(accounts: int, count: int, repeats: int, probes: int, bits: int | None) -> dict:
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})  # one core for every figure
    if bits is not None:
        _use_bits(bits)
    genesis, senders = setup(count)
    state = genesis.state()
    rng = random.Random(15)
    filler = ((("acct", rng.randbytes(20), (rng.randrange(10**12), rng.randrange(100))))
              for _ in range(max(accounts - count, 0)))
    start = time.perf_counter()
    state.load(filler)  # fills the ledger, then builds the tree from all of it, as a restart does
    build_s = time.perf_counter() - start
    root = state.state_root()
    start = time.perf_counter()  # the tree alone, from a ledger already in memory
    assert statetree.build((ns, k, v) for ns, table in state.ns.items() for k, v in table.items()).root() == root
    rebuild_s = time.perf_counter() - start
    sizes = [len(b) for b in state.tree._buckets.values()]

    # Proofs of present and absent keys.
    present = rng.sample(sorted(state.ns["acct"])[:200_000], probes // 2)
    absent = [rng.randbytes(20) for _ in range(probes - len(present))]
    proof_bytes, verify_s, prove_s = [], [], []
    for address in present + absent:
        t0 = time.perf_counter()
        proof = state.tree.prove("acct", address)
        t1 = time.perf_counter()
        found, _ = statetree.verify(root, "acct", address, proof)
        t2 = time.perf_counter()
        assert found == (address in state.ns["acct"])
        prove_s.append(t1 - t0)
        verify_s.append(t2 - t1)
        proof_bytes.append(len(encode(proof)))

    # The block: 10,000 transfers, each from its own sender.
    txs = transfers(senders, count)
    parent = state.head
    applied = build_block(state, PRODUCER, 1, txs).applied
    block, changes, undo = applied.block, applied.changes, applied.undo
    assert len(block.txs) == count
    state.revert(undo, parent)
    assert state.state_root() == root
    messages = [(t.sender, t.signing_bytes(CHAIN), t.signature) for t in txs]
    bare, cold, root_s, revert_s = [], [], [], []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for pk, msg, sig in messages:
            keys.verify(pk, msg, sig)
        bare.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        apply_block(state, block)
        cold.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        state.revert(undo, parent)
        state.state_root()
        revert_s.append(time.perf_counter() - t0)
        t0 = time.perf_counter()  # the root's share alone: the same changes into the tree, rehashed
        state.tree.update(changes)
        state.tree.root()
        root_s.append(time.perf_counter() - t0)
        state.tree.update(undo)
        assert state.tree.root() == root
    # For comparison: SHA-256 of a node (65 bytes), as many as a sparse Merkle tree over key hashes
    # would need for the same changes at this size (one per level down to ~log2(accounts) + 1).
    depth = max(accounts, 2).bit_length() + 1
    node = b"\x01" + bytes(64)
    t0 = time.perf_counter()
    for _ in range(len(changes) * depth):
        hashlib.sha256(node).digest()
    smt_s = time.perf_counter() - t0
    b, c = _median(bare), _median(cold)
    return {
        "benchmark": "state_proofs", "accounts": len(state.ns["acct"]), "bucket_bits": statetree.BUCKET_BITS,
        "load_and_build_s": round(build_s, 2), "tree_build_s": round(rebuild_s, 2),
        "max_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "bucket_entries_mean": round(sum(sizes) / 2**statetree.BUCKET_BITS, 1), "bucket_entries_max": max(sizes),
        "proof_bytes_median": int(_median(proof_bytes)), "proof_bytes_max": max(proof_bytes),
        "verify_us_median": round(_median(verify_s) * 1e6, 1), "prove_us_median": round(_median(prove_s) * 1e6, 1),
        "block_transfers": count, "block_changes": len(changes), "repeats": repeats,
        "bare_verify_s": round(b, 3), "apply_cold_s": round(c, 3), "cold_ratio": round(c / b, 2), "target_ratio": 1.5,
        "root_update_s": round(_median(root_s), 3), "root_share_of_apply": round(_median(root_s) / c, 3),
        # Per repeat, against the bare checks of the same minute (the machine's speed drifts):
        "root_vs_bare": round(_median([r / x for r, x in zip(root_s, bare)]), 3),
        "apply_without_root_vs_bare": round(_median([(a - r) / x for a, r, x in zip(cold, root_s, bare)]), 2),
        "revert_s": round(_median(revert_s), 3), "smt_hashes_estimate_s": round(smt_s, 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=1_000_000)
    parser.add_argument("--transfers", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--probes", type=int, default=2_000,
                        help="keys proven and verified (half present, half absent)")
    parser.add_argument("--bits", type=int, default=None, help="another bucket count, for comparison only")
    args = parser.parse_args()
    print(json.dumps(run(args.accounts, args.transfers, args.repeats, args.probes, args.bits)))


if __name__ == "__main__":
    main()

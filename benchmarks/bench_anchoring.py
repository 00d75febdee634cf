"""The command log anchored at scale: ``--commands`` logged commands (1,000,000) anchored on a real
embedded chain node, counting the ``command_log`` transactions it takes (target: at most 100), the
inclusion proof's length (at most 20 hashes) and the time to check one (under 1 ms).

What runs is the hub's own code: ``Store.log_commands`` (each row and its RFC 6962 leaf in one
transaction, chunks of ``--chunk``), the ``Anchorer`` publishing batches of ``--batch-size`` through
``EmbeddedAccess`` to a ``ChainNode`` whose blocks are produced here, one per pass (a simulated
clock: slots are not waited for). Proofs are built from hub.db (the batch's leaf hashes) and checked
with ``merkle.verify_inclusion`` from the leaf rebuilt from the stored row, as ``hub device log
verify`` does. One core; figures are medians unless named p99.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import tempfile
import time
from pathlib import Path


def run(commands: int, batch_size: int, chunk: int, probes: int) -> dict:
    from hub.chain.access import EmbeddedAccess
    from hub.chain.node.node import ChainNode
    from hub.chain.protocol.genesis import Genesis
    from hub.crypto import merkle
    from hub.crypto.address import address_of, encode_address
    from hub.crypto.keys import PrivateKey
    from hub.identity.anchor import AnchorConfig, Anchorer
    from hub.store import Store
    from hub.store.logleaf import leaf

    producer, owner = PrivateKey(b"\x01" * 32), PrivateKey(b"\x02" * 32)
    start_ms = 1_767_225_600_000
    genesis = Genesis(chain_id="bench-anchoring", genesis_time=start_ms, producers=[producer.public_key.hex()],
                      balances={encode_address(address_of(owner.public_key)): 10**12},
                      constants={"BLOCK_INTERVAL": 1000, "PRODUCERS": 1})
    clock = {"ms": start_ms + 10}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        store = Store(root / "hub")
        t0 = time.perf_counter()
        for first in range(0, commands, chunk):
            store.log_commands([{"ts": start_ms / 1000 + (first + i) / 1000, "entity_id": "switch.plug",
                                 "command": "turn_on" if i % 2 else "turn_off", "args": {},
                                 "source": f"signed:{(first + i) % 997:016x}", "ok": i % 7 != 0,
                                 "error": None if i % 7 else "replayed: counter not above the last one"}
                                for i in range(min(chunk, commands - first))])
        log_s = time.perf_counter() - t0

        node = ChainNode(root / "chain", genesis, producer)
        access = EmbeddedAccess(node, lambda: clock["ms"])
        anchorer = Anchorer(store, access, owner, lambda: clock["ms"] / 1000 + 3600,
                            AnchorConfig(interval=1, batch_size=batch_size))

        async def anchor_all() -> int:
            passes = 0
            while True:
                passes += 1
                await anchorer.step()
                clock["ms"] += node.constants.BLOCK_INTERVAL
                node.produce(clock["ms"])
                counts = anchorer.anchors.counts()
                if counts["final"] == counts["logged"] == commands:
                    return passes
                if passes > 10 * (commands // batch_size + 10):
                    raise RuntimeError(f"not anchored: {counts}, last error {anchorer.last_error}")

        t0 = time.perf_counter()
        passes = asyncio.run(anchor_all())
        anchor_s = time.perf_counter() - t0
        following, transactions = node.state.get("clog", address_of(owner.public_key))
        assert following == commands

        rng = random.Random(1)
        lengths, build_s, check_s = [], [], []
        for log_id in rng.sample(range(1, commands + 1), min(probes, commands)):
            t0 = time.perf_counter()
            entry = anchorer.anchors.entry(log_id)
            batch, index = entry["batch"], entry["index"]
            path = anchorer.anchors.path(batch, index)
            build_s.append(time.perf_counter() - t0)
            data = leaf(*entry["row"])
            t0 = time.perf_counter()
            ok = merkle.verify_inclusion(data, index - batch.first, batch.count, path, batch.root)
            check_s.append(time.perf_counter() - t0)
            assert ok
            lengths.append(len(path))
        node.close()
        db_mb = (root / "hub" / "hub.db").stat().st_size / 2**20
        store.close()

    def med(xs: list[float]) -> float:
        return sorted(xs)[len(xs) // 2]

    def p99(xs: list[float]) -> float:
        return sorted(xs)[min(len(xs) - 1, int(len(xs) * 0.99))]

    return {
        "benchmark": "anchoring", "commands": commands, "batch_size": batch_size,
        "log_s": round(log_s, 1), "logged_per_s": round(commands / log_s), "hub_db_mb": round(db_mb, 1),
        "transactions": transactions, "target_transactions": 100, "passes": passes, "anchor_s": round(anchor_s, 1),
        "proof_hashes_max": max(lengths), "target_proof_hashes": 20,
        "proof_check_us_median": round(med(check_s) * 1e6, 1), "proof_check_us_p99": round(p99(check_s) * 1e6, 1),
        "target_check_us": 1000, "proof_build_ms_median": round(med(build_s) * 1000, 2), "probes": len(lengths),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--commands", type=int, default=1_000_000)
    parser.add_argument("--batch-size", type=int, default=16_384)
    parser.add_argument("--chunk", type=int, default=10_000, help="commands logged per transaction of hub.db")
    parser.add_argument("--probes", type=int, default=1_000, help="proofs built and checked")
    args = parser.parse_args()
    print(json.dumps(run(args.commands, args.batch_size, args.chunk, args.probes)))


if __name__ == "__main__":
    main()

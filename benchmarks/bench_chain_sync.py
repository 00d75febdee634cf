"""Time for a new node to sync 10,000 blocks of transfers from a peer (issue #6), real processes.

Set-up: a one-producer genesis (``BLOCK_INTERVAL=100``, the minimum, and a genesis time far enough
back that every slot of the chain is in the past) funding ``--senders`` accounts; the chain of
``--blocks`` blocks of ``--txs-per-block`` transfers each is produced in this process by a
``ChainNode`` on a fake clock (transfers signed beforehand; the producer's own mempool entry of
each one is not timed). Then, timed: one ``hub chain node`` process serves that data directory
(no producer key, so the chain does not grow), and a fresh ``hub chain node`` process with an empty
data directory peers with it; the clock runs from the fresh process's start until its ``/head``
(polled every 100 ms) reaches the source's height with the same hash. Every process runs on this
machine's 2 cores; the fresh node checks every block (signatures of transactions it has never
seen, which is what a new node does) and commits it to SQLite.

Reported: the total (process start included), the start-up alone (process start to its RPC
answering), the sync itself (RPC answering to synced) and blocks/s and transfers/s over the sync.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from _devnet import NodeProc, address, free_ports, json_line, key

import httpx

from hub.chain.node.files import GENESIS_FILE
from hub.chain.node.node import ChainNode
from hub.chain.protocol import payloads as p
from hub.chain.protocol.constants import RUFF
from hub.chain.protocol.genesis import Genesis
from hub.chain.protocol.tx import Transaction
from hub.crypto.address import address_of

CHAIN = "bench-sync"
INTERVAL = 100  # ms, the smallest BLOCK_INTERVAL a genesis may set


def build_chain(root: Path, blocks: int, per_block: int, senders: int) -> tuple[Path, Path, dict]:
    """The source data directory and the genesis file; the chain is ``blocks`` long."""
    producer = key("sync-producer")
    sender_keys = [key(f"sync-sender{i}") for i in range(senders)]
    now = int(time.time() * 1000)
    genesis_time = (now - (blocks + 600) * INTERVAL) // 1000 * 1000
    genesis = Genesis(chain_id=CHAIN, genesis_time=genesis_time, producers=[producer.public_key.hex()],
                      balances={address(k): 10**6 * RUFF for k in sender_keys}, constants={"BLOCK_INTERVAL": INTERVAL})
    gfile = root / "genesis.json"
    gfile.write_text(genesis.to_json())
    to = address_of(key("recipient").public_key)
    valid_until = now + 3_600_000
    src = root / "source"
    t0 = time.perf_counter()
    node = ChainNode(src, genesis, producer, synchronous="OFF")
    # Building only (not timed): a large page cache keeps the per-block last-irreversible query
    # (a join into the blocks table) from re-reading pages as the chain grows.
    node.store.conn.execute("PRAGMA cache_size=-262144")
    shutil.copyfile(gfile, src / GENESIS_FILE)
    n = 0
    signing = 0.0
    for slot in range(1, blocks + 1):
        t = time.perf_counter()
        txs = []
        for _ in range(per_block):
            s = n % senders
            txs.append(Transaction.create(sender_keys[s], genesis.network, "transfer", p.Transfer(to=to, amount=1 + n % 7),
                                          nonce=1 + n // senders, fee=10_000, valid_until=valid_until))
            n += 1
        signing += time.perf_counter() - t
        at = genesis_time + slot * INTERVAL
        for tx in txs:
            node.mempool.remember(tx.hash)  # signed here: the producer need not check its own
            node.submit(tx.raw, at)
        block = node.produce(at)
        assert block is not None and len(block.txs) == per_block, (slot, block and len(block.txs))
    head = node.head
    node.close()
    return src, gfile, {"height": head.height, "hash": head.hash.hex(), "transfers": n,
                        "build_s": round(time.perf_counter() - t0, 1), "sign_s": round(signing, 1)}


def sync_once(root: Path, src: Path, gfile: Path, target: dict, run: int, timeout: float) -> dict:
    p2p_src, rpc_src, p2p_new, rpc_new = free_ports(4)
    source = NodeProc(f"source{run}", root, gfile, p2p_src, rpc_src, None)
    fresh = NodeProc(f"fresh{run}", root, gfile, p2p_new, rpc_new, None)
    client = httpx.Client(timeout=5.0)

    def head(node: NodeProc) -> dict | None:
        try:
            r = client.get(f"{node.url}/head")
        except httpx.HTTPError:
            return None
        return r.json() if r.status_code == 200 else None

    try:
        source.start([], data=src)
        deadline = time.monotonic() + 60
        while (h := head(source)) is None or h["height"] < target["height"]:
            if time.monotonic() > deadline or source.proc.poll() is not None:
                raise RuntimeError(f"the source node did not start:\n{source.log.read_text()[-3000:]}")
            time.sleep(0.1)
        fresh.start([p2p_src], data=root / f"fresh{run}")
        started = time.perf_counter()
        rpc_up = None
        deadline = time.monotonic() + timeout
        while True:
            h = head(fresh)
            now = time.perf_counter()
            if h is not None and rpc_up is None:
                rpc_up = now
            if h is not None and h["height"] >= target["height"]:
                break
            if time.monotonic() > deadline or fresh.proc.poll() is not None:
                raise RuntimeError(f"the fresh node did not sync ({h and h['height']}/{target['height']}):\n"
                                   f"{fresh.log.read_text()[-3000:]}")
            time.sleep(0.1)
        done = now
        got = client.get(f"{fresh.url}/blocks/{target['height']}").json()
        assert got["hash"] == target["hash"], "the fresh node synced another chain"
    finally:
        client.close()
        fresh.stop()
        source.stop()
    sync_s = done - rpc_up
    return {"total_s": round(done - started, 2), "startup_s": round(rpc_up - started, 2), "sync_s": round(sync_s, 2),
            "blocks_per_s": round(target["height"] / sync_s), "tx_per_s": round(target["transfers"] / sync_s)}


def table(runs: list[dict], median: dict, target: dict, per_block: int) -> None:
    from rich.console import Console
    from rich.table import Table

    t = Table(title=f"Chain sync: a fresh node syncs {target['height']:,} blocks of {per_block} transfers "
                    f"({target['transfers']:,} in all) from one peer; {len(runs)} run(s)", header_style="bold")
    t.add_column("figure")
    t.add_column("median", justify="right")
    t.add_column("range", justify="right")
    for label, field in [("process start → synced (s)", "total_s"), ("process start → RPC answering (s)", "startup_s"),
                         ("RPC answering → synced (s)", "sync_s"), ("blocks/s", "blocks_per_s"), ("transfers/s", "tx_per_s")]:
        vals = [r[field] for r in runs]
        t.add_row(label, str(median[field]), f"{min(vals)}–{max(vals)}")
    t.caption = f"chain built in-process in {target['build_s']} s (signing {target['sign_s']} s), not timed"
    Console(stderr=True).print(t)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--blocks", type=int, default=10_000)
    parser.add_argument("--txs-per-block", type=int, default=10)
    parser.add_argument("--senders", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=1, help="syncs of the same chain by fresh nodes; median and range")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds one sync may take")
    parser.add_argument("--keep", type=Path, help="keep the chain, node data and logs in this directory (a chain built there "
                        "before with the same --blocks/--txs-per-block/--senders is reused)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-sync-") as tmp:
        root = args.keep or Path(tmp)
        root.mkdir(parents=True, exist_ok=True)
        built = root / "chain.json"
        if args.keep and built.exists() and json.loads(built.read_text())["args"] == [args.blocks, args.txs_per_block, args.senders]:
            src, gfile, target = root / "source", root / "genesis.json", json.loads(built.read_text())["target"]
        else:
            src, gfile, target = build_chain(root, args.blocks, args.txs_per_block, args.senders)
            built.write_text(json.dumps({"args": [args.blocks, args.txs_per_block, args.senders], "target": target}))
        runs = [sync_once(root, src, gfile, target, i, args.timeout) for i in range(args.repeats)]
    ordered = sorted(runs, key=lambda r: r["total_s"])
    median = dict(ordered[len(ordered) // 2])
    table(runs, median, target, args.txs_per_block)
    result = {"benchmark": "chain_sync", "blocks": target["height"], "txs_per_block": args.txs_per_block,
              "transfers": target["transfers"], **median, "repeats": args.repeats,
              "total_s_range": [ordered[0]["total_s"], ordered[-1]["total_s"]],
              "sync_s_median": round(statistics.median(r["sync_s"] for r in runs), 2),
              "build_s": target["build_s"]}
    print(json_line(result), flush=True)


if __name__ == "__main__":
    main()

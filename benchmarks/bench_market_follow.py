"""The market following a chain with many live contracts: hub CPU per block (issue #17).

Target: at most 5 ms of hub CPU per block while 10,000 of this hub's contracts are live.

What runs is the hub's own code: :class:`hub.market.service.Market` (its follower, its rentals,
market.db in SQLite) over ``EmbeddedAccess`` to a real ``ChainNode`` whose blocks are produced here
(a simulated clock: slots are not waited for). The chain holds ``--contracts`` contracts of this
hub's device, created by real ``create_contract`` transactions and followed by the market before
the measurement. Then each measured block carries a realistic mix: ``--transfers`` transfers,
``--calls`` new prepaid calls on random contracts of this hub (each opens a grant on the device's
light node, signed with the controller key, and later ends and is returned by the hub: the
``return`` transactions are in later blocks too), while ``--open`` calls are kept running. The
hub's CPU for a block is the process CPU time of ``Market.step()`` after the block is final: the
follower reading the block through ``EmbeddedAccess`` (decoding its transactions), the market's
handling of them, the cursor's commit, and the rentals' pass (grants, ends, returns submitted).
The identity gate is a small stand-in holding real light nodes (``LightNode`` on a memory flash),
so a grant costs its real signature and checks. One core; figures are medians and p99.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


class _Identity:
    """The part of ``hub.identity.service.Identity`` the market uses, over real light nodes."""

    def __init__(self, key, network, devices: dict[bytes, str], now) -> None:
        from hub.identity.lightnode import LightNode, MemoryFlash

        self.controller_key = key
        self.network = network
        self._by_key = devices
        self._now = now
        self._nodes = {device_id: LightNode(pk, network, MemoryFlash()) for pk, device_id in devices.items()}

    def device_for_key(self, public_key: bytes):
        return self._by_key.get(public_key)

    def holds_key(self, device_id: str) -> bool:
        return False

    def lightnode(self, device_id: str):
        return self._nodes[device_id]

    def add_grant(self, device_id: str, signed) -> None:
        self._nodes[device_id].grant(signed, self._now())  # as the gate does: expired grants make room


def run(contracts: int, blocks: int, transfers: int, calls: int, window_blocks: int, profile: bool = False) -> dict:
    from hub.chain.access import EmbeddedAccess
    from hub.chain.node.node import ChainNode
    from hub.chain.protocol.genesis import Genesis
    from hub.chain.protocol.tx import Transaction
    from hub.crypto.address import address_of, encode_address
    from hub.crypto.keys import PrivateKey
    from hub.crypto.statements import Bind, sign
    from hub.market.plugin import MarketConfig
    from hub.market.service import Market
    from hub.market.store import MarketStore

    producer, owner, device = PrivateKey(b"\x01" * 32), PrivateKey(b"\x02" * 32), PrivateKey(b"\x03" * 32)
    renters = [PrivateKey(bytes([0x40 + i]) * 32) for i in range(8)]
    payer = PrivateKey(b"\x09" * 32)
    start_ms = 1_767_225_600_000
    interval = 1000
    genesis = Genesis(chain_id="bench-market", genesis_time=start_ms, producers=[producer.public_key.hex()],
                      balances={encode_address(address_of(k.public_key)): 10**13
                                for k in [owner, payer, *renters]},
                      constants={"BLOCK_INTERVAL": interval, "PRODUCERS": 1})
    net = genesis.network
    clock = {"ms": start_ms + 10}
    nonces: dict[bytes, int] = {}
    window = window_blocks * interval

    def tx(key, kind: str, payload: dict) -> Transaction:
        sender = key.public_key
        nonces[sender] = nonces.get(sender, 0) + 1
        return Transaction.create(key, net, kind, payload, nonce=nonces[sender], fee=100_000,
                                  valid_until=clock["ms"] + 3_600_000)

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        node = ChainNode(root / "chain", genesis, producer)
        access = EmbeddedAccess(node, lambda: clock["ms"])
        identity = _Identity(owner, net, {device.public_key: "bench:plug"}, lambda: clock["ms"])
        bind = sign(Bind(device.public_key, owner.public_key, clock["ms"]), device, net)
        identity.lightnode("bench:plug").bind(bind)
        store = MarketStore(root / "hub")
        config = MarketConfig(poll=0.1)
        market = Market(store, identity, lambda: access, now=lambda: clock["ms"] / 1000, read_entity=lambda d, k: None,
                        config=config)
        nonces[owner.public_key] = 0

        def produce(raws: list[bytes]) -> None:
            clock["ms"] += interval
            if raws:
                node.submit_many(raws, clock["ms"])
            node.produce(clock["ms"])

        async def follow_all() -> None:
            while await market.step():
                pass
            await market.step()

        async def setup() -> list[bytes]:
            await market.step()  # the cursor starts at the final block
            produce([tx(owner, "bind_device", {"statement": bind.to_body()}).raw])
            offers = []
            terms = {"kind": "prepaid", "price": 50, "window": window, "max_duration": window}
            for first in range(0, contracts, 2_000):
                batch = [tx(owner, "create_contract", {"device": device.public_key,
                                                       "commands": ["outlet.turn_on", "outlet.turn_off"],
                                                       "terms": terms, "endpoint": ""})
                         for _ in range(min(2_000, contracts - first))]
                offers += [t.hash for t in batch]
                produce([t.raw for t in batch])
                await follow_all()
            produce([])  # the last offers final
            await follow_all()
            return offers

        t0 = time.perf_counter()
        offers = asyncio.run(setup())
        setup_s = time.perf_counter() - t0
        nonces[owner.public_key] = node.state.nonce(address_of(owner.public_key))
        live = len(store.contracts(status="live"))
        assert live == contracts, f"{live} of {contracts} contracts live"

        rng = random.Random(1)
        cpu_ms: list[float] = []
        sizes: list[int] = []

        async def measure() -> None:
            sink = address_of(PrivateKey(b"\x0a" * 32).public_key)
            for b in range(blocks):
                raws = [tx(payer, "transfer", {"to": sink, "amount": 1 + i}).raw for i in range(transfers)]
                raws += [tx(renters[(b + i) % len(renters)], "call",
                            {"contract": rng.choice(offers), "deposit": 50}).raw for i in range(calls)]
                produce(raws)
                sizes.append(len(node.store.canonical_block(node.head.height).txs))
                c0 = time.process_time()
                await market.step()
                cpu_ms.append((time.process_time() - c0) * 1000)
                if profile:
                    print(b, round(cpu_ms[-1], 2), file=sys.stderr)

        asyncio.run(measure())
        returned = len(store.calls(states=("returned",)))
        opened = len(store.calls())
        node.close()
        store.close()

    def med(xs: list[float]) -> float:
        return sorted(xs)[len(xs) // 2]

    def p99(xs: list[float]) -> float:
        return sorted(xs)[min(len(xs) - 1, int(len(xs) * 0.99))]

    return {
        "benchmark": "market_follow", "live_contracts": contracts, "blocks": blocks, "txs_per_block": med(sizes),
        "calls_per_block": calls, "calls_seen": opened, "calls_returned": returned, "setup_s": round(setup_s, 1),
        "hub_cpu_ms_per_block_median": round(med(cpu_ms), 2), "hub_cpu_ms_per_block_p99": round(p99(cpu_ms), 2),
        "hub_cpu_ms_per_block_mean": round(sum(cpu_ms) / len(cpu_ms), 2), "target_ms": 5,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contracts", type=int, default=10_000)
    parser.add_argument("--blocks", type=int, default=200)
    parser.add_argument("--transfers", type=int, default=100, help="transfers per block")
    parser.add_argument("--calls", type=int, default=2, help="calls on this hub's contracts per block")
    parser.add_argument("--window-blocks", type=int, default=10, help="a call's paid window, in blocks")
    args = parser.parse_args()
    print(json.dumps(run(args.contracts, args.blocks, args.transfers, args.calls, args.window_blocks)))


if __name__ == "__main__":
    main()

"""The market over a real chain node in-process, on a clock the test moves: what the hub does when
it sees a call late (its hub was down), and that each block's payments are booked once."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

from bench_market_follow import _Identity  # noqa: E402  (real light nodes behind the market's view of the gate)

from hub.chain.access import EmbeddedAccess
from hub.chain.node.node import ChainNode
from hub.chain.protocol.genesis import Genesis
from hub.chain.protocol.tx import Transaction
from hub.crypto.address import address_of, encode_address
from hub.crypto.keys import PrivateKey
from hub.crypto.statements import Bind, Command, sign
from hub.identity.errors import Refused
from hub.market.plugin import MarketConfig
from hub.market.service import Market
from hub.market.store import MarketStore

PRODUCER, OWNER, DEVICE, RENTER = (PrivateKey(bytes([i]) * 32) for i in (1, 2, 3, 4))
START = 1_767_225_600_000
PRICE, WINDOW = 100, 10_000


class World:
    def __init__(self, root: Path) -> None:
        genesis = Genesis(chain_id="market-follow", genesis_time=START, producers=[PRODUCER.public_key.hex()],
                          balances={encode_address(address_of(k.public_key)): 10**9 for k in (OWNER, RENTER)},
                          constants={"BLOCK_INTERVAL": 1000, "PRODUCERS": 1})
        self.net = genesis.network
        self.clock = {"ms": START + 10}
        self.node = ChainNode(root / "chain", genesis, PRODUCER)
        self.access = EmbeddedAccess(self.node, lambda: self.clock["ms"])
        self.identity = _Identity(OWNER, self.net, {DEVICE.public_key: "demo:plug"}, lambda: self.clock["ms"])
        self.identity.lightnode("demo:plug").bind(sign(Bind(DEVICE.public_key, OWNER.public_key, START), DEVICE,
                                                       self.net))
        self.store = MarketStore(root / "hub")
        self.market = Market(self.store, self.identity, lambda: self.access, now=lambda: self.clock["ms"] / 1000,
                             read_entity=lambda device, key: None, config=MarketConfig(poll=0.1))
        self.nonces: dict[bytes, int] = {}

    def send(self, key: PrivateKey, kind: str, payload: dict) -> bytes:
        self.nonces[key.public_key] = self.node.state.nonce(address_of(key.public_key)) + 1
        tx = Transaction.create(key, self.net, kind, payload, nonce=self.nonces[key.public_key], fee=100_000,
                                valid_until=self.clock["ms"] + 3_600_000)
        self.node.submit(tx.raw, self.clock["ms"])
        return tx.hash

    def block(self, ms: int = 1000) -> None:
        self.clock["ms"] += ms
        self.node.produce(self.clock["ms"])

    def step(self) -> None:
        asyncio.run(self.market.step())

    def close(self) -> None:
        self.node.close()
        self.store.close()


def _offer(w: World) -> bytes:
    w.step()  # following from the final block
    w.send(OWNER, "bind_device", {"statement": sign(Bind(DEVICE.public_key, OWNER.public_key, START), DEVICE,
                                                     w.net).to_body()})
    w.block()
    offer = w.send(OWNER, "create_contract", {"device": DEVICE.public_key, "commands": ["outlet.turn_on"],
                                               "terms": {"kind": "prepaid", "price": PRICE, "window": WINDOW,
                                                         "max_duration": 2 * WINDOW}, "endpoint": ""})
    w.block()
    w.block()
    w.step()
    assert w.store.contract(offer).status == "live"
    return offer


def _renter_may(w: World, at_ms: int) -> bool:
    command = sign(Command(w.net.chain_id, DEVICE.public_key, "outlet", "turn_on", {}, at_ms, at_ms,
                           RENTER.public_key), RENTER, w.net)
    try:
        w.identity.lightnode("demo:plug").check(command, at_ms)
    except Refused:
        return False
    return True


def test_a_call_seen_after_its_window_costs_nothing_and_opens_nothing(tmp_path):
    w = World(tmp_path)
    try:
        offer = _offer(w)
        call = w.send(RENTER, "call", {"contract": offer, "deposit": 2 * PRICE})
        w.block()
        w.block(3 * WINDOW)  # the hub was down: the call's block is final only after its windows
        w.step()
        row = w.store.call(call)
        assert row.state == "ended" and row.used == 0 and row.granted_at is None
        assert not _renter_may(w, w.clock["ms"])
        w.step()  # the return goes out
        w.block()
        w.block()
        w.step()
        assert w.node.state.get("call", call)[6:8] == ("returned", 0)
        assert w.store.call(call).state == "returned"
        assert w.store.payments() == []  # nothing earned
    finally:
        w.close()


def test_a_call_seen_in_time_is_charged_from_its_grant_and_booked_once(tmp_path):
    w = World(tmp_path)
    try:
        offer = _offer(w)
        call = w.send(RENTER, "call", {"contract": offer, "deposit": 2 * PRICE})
        w.block()
        w.block()
        w.step()
        row = w.store.call(call)
        assert row.state == "open" and row.granted_at is not None and row.windows == 2
        assert _renter_may(w, w.clock["ms"] + 1)
        w.clock["ms"] += WINDOW + 1  # into the second window: the renter ends
        asyncio.run(w.market.end(call))
        assert not _renter_may(w, w.clock["ms"] + 1)
        assert w.store.call(call).used == 2 * PRICE
        w.step()
        w.block()
        w.block()
        w.step()
        w.step()  # the same blocks are not handled twice; a second pass books nothing
        assert [p["amount"] for p in w.store.payments()] == [2 * PRICE]
        assert w.node.state.get("call", call)[6:8] == ("returned", 2 * PRICE)
        # After a restart (a new Market on the same market.db), nothing is booked or sent again.
        w.market = Market(w.store, w.identity, lambda: w.access, now=lambda: w.clock["ms"] / 1000,
                          read_entity=lambda device, key: None, config=MarketConfig(poll=0.1))
        asyncio.run(w.market.rentals.recover())
        w.step()
        w.block()
        w.block()
        w.step()
        assert [p["amount"] for p in w.store.payments()] == [2 * PRICE]
    finally:
        w.close()


class _Unreachable:
    """The hub's chain access while its node cannot be reached yet (the rest is the real node's)."""

    def __init__(self, access: EmbeddedAccess) -> None:
        self.access, self.up = access, False

    def available(self) -> bool:
        return self.up

    def __getattr__(self, name: str):
        return getattr(self.access, name)


def test_an_offer_and_a_call_final_before_the_first_look_are_served(tmp_path):
    w = World(tmp_path)
    gate = _Unreachable(w.access)
    w.market = Market(w.store, w.identity, lambda: gate, now=lambda: w.clock["ms"] / 1000,
                      read_entity=lambda device, key: None, config=MarketConfig(poll=0.1))
    try:
        for _ in range(30):  # a chain long under way before the hub starts
            w.block()
        w.step()  # the market wants the chain; its node does not answer
        w.send(OWNER, "bind_device", {"statement": sign(Bind(DEVICE.public_key, OWNER.public_key, START), DEVICE,
                                                         w.net).to_body()})
        w.block()
        offer = w.send(OWNER, "create_contract", {"device": DEVICE.public_key, "commands": ["outlet.turn_on"],
                                                   "terms": {"kind": "prepaid", "price": PRICE, "window": WINDOW,
                                                             "max_duration": 2 * WINDOW}, "endpoint": ""})
        w.block()
        call = w.send(RENTER, "call", {"contract": offer, "deposit": 2 * PRICE})
        w.block()
        w.block()
        w.block()  # all of it final
        gate.up = True
        w.step()
        assert w.store.contract(offer).status == "live"
        row = w.store.call(call)
        assert row is not None and row.state == "open"
        assert _renter_may(w, w.clock["ms"] + 1)
    finally:
        w.close()

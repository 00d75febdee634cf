"""ChainAccess, the one way the hub's features reach the chain: the embedded node in-process, and a
real ``hub chain node`` process followed through the light client (nothing unverified comes back)."""

from __future__ import annotations

import asyncio
import subprocess

import pytest

from hub.chain.access import ChainUnavailable, EmbeddedAccess, RemoteAccess, TxRefused
from hub.chain.node.node import ChainNode
from hub.chain.protocol.constants import RUFF
from hub.crypto.address import address_of
from tests.chain.chainkit import GENESIS_TIME, addr, key, make_genesis

OWNER, PRODUCER, OTHER = key("access-owner"), key("access-producer"), key("access-other")


class Clock:
    def __init__(self) -> None:
        self.ms = GENESIS_TIME + 10

    def __call__(self) -> int:
        return self.ms


def _embedded(tmp_path):
    genesis = make_genesis([PRODUCER], {OWNER: 100 * RUFF})
    node = ChainNode(tmp_path / "chain", genesis, PRODUCER)
    clock = Clock()
    return node, clock, EmbeddedAccess(node, clock)


def _produce(node: ChainNode, clock: Clock) -> None:
    clock.ms += node.constants.BLOCK_INTERVAL
    assert node.produce(clock.ms) is not None


def test_embedded_submit_chooses_nonces_and_fees_and_reads_back_what_the_chain_holds(tmp_path):
    node, clock, access = _embedded(tmp_path)
    try:
        async def scenario():
            to = addr(OTHER)
            # Two back to back: the second goes after the first, still pending.
            first = await access.submit(OWNER, "transfer", {"to": to, "amount": 2 * RUFF})
            second = await access.submit(OWNER, "transfer", {"to": to, "amount": 3 * RUFF})
            assert (await access.status(first))["status"] == "pending"
            # The CLI's inbox counts too: a transaction it queued for the same key is not collided with.
            from hub.chain.access import build_tx

            queued = build_tx(OWNER, access.network, access.constants, "transfer", {"to": to, "amount": 1}, 3, clock())
            node.store.add_to_inbox(queued.hash, queued.raw, address_of(OWNER.public_key), 3)
            third = await access.submit(OWNER, "transfer", {"to": to, "amount": 4 * RUFF})
            _produce(node, clock)
            assert access.head()[0] == 1
            found = await access.status(third)
            assert found["status"] in ("included", "final") and found["height"] == 1
            assert (await access.status(b"\x01" * 32))["status"] == "unknown"
            balance, nonce = await access.state("acct", to)
            assert balance == 9 * RUFF + 1 and nonce == 0
            assert (await access.state("acct", addr(OWNER)))[1] == 4
            assert await access.state("acct", b"\x00" * 20) is None
            with pytest.raises(ValueError, match="no state namespace"):
                await access.state("nope", b"")
            blocks = await access.blocks_since(0)
            assert [b.height for b in blocks] == [1]
            hashes = [t.hash for t in blocks[0].txs]
            assert hashes.index(first) < hashes.index(second) and third in hashes and queued.hash in hashes
            c = access.constants
            assert all(c.fee_for(t.size) <= t.fee <= c.fee_for(t.size + 9) for t in blocks[0].txs)  # the minimum
            assert blocks[0].timestamp == node.head.timestamp and blocks[0].final == (node.lib >= 1)
            assert await access.blocks_since(1) == []
            # Refusals name the reason; nothing is left half-done and the next nonce is still right.
            with pytest.raises(TxRefused) as bad:
                await access.submit(OWNER, "transfer", {"to": b"short", "amount": 1})
            assert bad.value.reason == "bad_payload" and "to" in bad.value.message
            with pytest.raises(TxRefused) as poor:
                await access.submit(OTHER, "transfer", {"to": addr(OWNER), "amount": 10**9 * RUFF})
            assert poor.value.reason == "insufficient_balance"
            after = await access.submit(OWNER, "transfer", {"to": to, "amount": 1})
            _produce(node, clock)
            assert (await access.status(after))["height"] == 2
            assert (await access.state("acct", addr(OWNER)))[1] == 5

        asyncio.run(scenario())
    finally:
        node.close()


# --- remote: a real node process, through the light client ---------------------------------------

def test_remote_submit_resyncs_its_nonces_and_returns_only_what_verifies(tmp_path):
    from hub.chain.access import build_tx
    from hub.chain.node.files import read_key
    from hub.chain.protocol.block import Block
    from hub.chain.protocol.genesis import load_genesis
    from hub.chain.remote import RemoteChain
    from tests.chain.test_remote_hub import Node, poll

    node = Node(tmp_path)
    node.start()
    try:
        poll("the node's RPC", lambda: node.get("/head"), 20, node.log)
        genesis = load_genesis(tmp_path / "g/genesis.json")
        sender = read_key(tmp_path / "g/keys/producer-0.key")
        to = addr(OTHER)

        async def scenario():
            remote = RemoteChain(node.url, genesis)
            access = RemoteAccess(remote)
            await remote.sync()
            assert access.network == genesis.network and access.head()[0] >= 0
            first = await access.submit(sender, "transfer", {"to": to, "amount": 2 * RUFF})
            second = await access.submit(sender, "transfer", {"to": to, "amount": 3 * RUFF})
            # Another client of the same key takes the next nonce behind this hub's back: the hub goes
            # after it, never replacing it (a higher fee for the same nonce would).
            import time

            other = build_tx(sender, genesis.network, genesis.rules(), "transfer", {"to": to, "amount": 1}, 3,
                             time.time_ns() // 1_000_000)
            assert node.post_tx(other.raw)["hash"] == other.hash.hex()
            third = await access.submit(sender, "transfer", {"to": to, "amount": 4 * RUFF})
            # A transaction the hub thinks pending that the node lost (a mempool does not survive a
            # node's restart): the next nonce leaves a gap, is refused, and the hub resyncs once.
            access._pending[address_of(sender.public_key)][9] = 2**62
            fourth = await access.submit(sender, "transfer", {"to": to, "amount": 5})
            with pytest.raises(TxRefused) as bad:
                await access.submit(sender, "transfer", {"to": to, "amount": 0})
            assert bad.value.reason == "bad_payload"

            async def final(tx_hash):
                for _ in range(200):
                    await remote.sync()
                    found = await access.status(tx_hash)
                    if found["status"] == "final":
                        return found
                    await asyncio.sleep(0.1)
                raise AssertionError(f"{tx_hash.hex()} not final: {found}\n{node.log()}")

            heights = [(await final(h))["height"] for h in (first, second, other.hash, third, fourth)]
            assert (await access.status(b"\x02" * 32))["status"] == "unknown"
            balance, nonce = await access.state("acct", to)
            assert balance == 9 * RUFF + 6 and nonce == 0
            assert (await access.state("acct", address_of(sender.public_key)))[1] == 5
            assert await access.state("acct", b"\x00" * 20) is None
            with pytest.raises(ValueError, match="no state namespace"):
                await access.state("nope", b"")
            blocks = await access.blocks_since(0, limit=max(heights))
            assert [b.height for b in blocks] == list(range(1, max(heights) + 1))
            got = {t.hash: b.height for b in blocks for t in b.txs}
            assert [got[h] for h in (first, second, other.hash, third, fourth)] == heights
            assert all(b.final for b in blocks if b.height <= remote.light.final.height)

            # Blocks below the light client's window cannot be verified: they are left out, and the
            # gap shows in the heights (the caller says so) instead of the answer staying empty.
            from hub.chain.light import LightClient

            poll("a chain longer than the window", lambda: node.get("/head")["height"] >= 24, 20, node.log)
            short = RemoteChain(node.url, genesis)
            short.light = LightClient(genesis, window=4)
            await short.sync()
            short.light._prune()  # it prunes every 32 headers; this chain may be shorter yet
            assert short.light.lowest_kept() > 1
            later = await RemoteAccess(short).blocks_since(0, limit=3)
            assert [b.height for b in later] == [short.light.lowest_kept() + i for i in range(3)]

            # A node that lies about a block's transactions or a state value is not believed.
            honest = remote._fetch

            def lying(path, body=None):
                data, kind = honest(path, body)
                if path.endswith("/raw"):
                    block = Block.decode(data)
                    return Block(block.header, block.txs[:-1] if block.txs else (b"forged",)).encode(), kind
                if path.startswith("/state/"):
                    return data.replace(b'"present":false', b'"present":true'), kind
                return data, kind

            remote._fetch = lying
            with pytest.raises(ChainUnavailable, match="tx_root"):
                await access.blocks_since(heights[0] - 1, limit=1)
            remote._fetch = lambda path, body=None: (honest(path, body)[0].replace(b'"entries":[', b'"entries":[["x"],'), "")
            with pytest.raises(ChainUnavailable, match="does not verify"):
                await access.state("acct", to)
            remote._fetch = honest

            # The node goes away: a clear ChainUnavailable, never a hang or a traceback from urllib.
            node.kill9()
            with pytest.raises(ChainUnavailable, match="cannot be reached"):
                await access.submit(sender, "transfer", {"to": to, "amount": 1})
            with pytest.raises(ChainUnavailable):
                await access.state("acct", to)

        asyncio.run(scenario())
    finally:
        node.close()


async def test_the_chain_plugin_offers_chain_access_that_works_beside_the_producer_loop(tmp_path):
    from hub.chain.node.files import read_key
    from hub.runtime import Hub
    from tests.chain.test_cli_and_embedded import hub_cli

    chain_dir = tmp_path / "chain"
    hub_cli("chain", "genesis", "--out", str(chain_dir), "--producers", "1", "--chain-id", "fast",
            "--set", "BLOCK_INTERVAL=200", "--set", "PRODUCERS=3")
    (tmp_path / "configuration.yaml").write_text("chain:\n")
    hub = Hub(tmp_path, entrypoints=False)
    await hub.start()
    try:
        access = hub.services["chain"]
        assert isinstance(access, EmbeddedAccess) and access.available()
        owner = read_key(chain_dir / "keys" / "producer-0.key")
        sent = [await access.submit(owner, "transfer", {"to": addr(OTHER), "amount": n + 1}) for n in range(3)]
        for _ in range(100):
            if [(await access.status(h))["status"] for h in sent] == ["final"] * 3:
                break
            await asyncio.sleep(0.1)
        assert [(await access.status(h))["status"] for h in sent] == ["final"] * 3
        assert await access.state("acct", addr(OTHER)) == (6, 0)
    finally:
        await hub.stop()

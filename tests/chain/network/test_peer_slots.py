"""Strangers against a node's peer slots, handshakes and sync, in one event loop (issue #15).

Each stranger connects from its own loopback address (127.0.0.0/8 all reach the node) where the
test is about addresses."""

from __future__ import annotations

import asyncio

import pytest

from hub.chain.p2p import limits, messages
from hub.chain.p2p.frames import encode_frame, read_frame
from hub.chain.p2p.network import Network, PeerLimitError
from hub.chain.p2p.peerslots import SlotLimits
from hub.crypto.encoding import encode
from tests.chain.chainkit import key
from tests.chain.network._raw import Refused, connect
from tests.chain.network.test_network import PRODUCER, _closed, _genesis, _node, _produce, _until


@pytest.fixture
async def lonely(tmp_path):
    """A node with no chain to speak of, listening; tests start its Network with their limits."""
    node = _node(tmp_path, "a", _genesis())
    nets: list[Network] = []

    async def start(**kw) -> Network:
        net = Network(node, key("node-a"), listen=("127.0.0.1", 0), **kw)
        await net.start()
        nets.append(net)
        return net

    yield node, start
    for net in nets:
        await net.stop()
    node.close()


async def _stranger(net: Network, node, name: str, source: str, **kw):
    return await connect("127.0.0.1", net.port, node.genesis, key(name), source=source, **kw)


async def _is_closed(reader, within: float = 3.0) -> bool:
    try:
        return await asyncio.wait_for(_closed(reader), within)
    except asyncio.TimeoutError:
        return False


async def test_strangers_compete_for_inbound_slots_among_themselves(lonely):
    """A crowded address gets no more slots; a full set evicts a stranger from the most crowded
    address for a newcomer; a proven producer gets in and is never the one evicted."""
    node, start = lonely
    net = await start(slots=SlotLimits(max_inbound=3, max_per_address=2))
    a1 = await _stranger(net, node, "a1", "127.0.0.2")
    a2 = await _stranger(net, node, "a2", "127.0.0.2")
    await _until(lambda: len(net.peers) == 2)
    a3 = await _stranger(net, node, "a3", "127.0.0.2")
    assert await _is_closed(a3[0]), "a third stranger from one address was let in"
    b1 = await _stranger(net, node, "b1", "127.0.0.3")
    await _until(lambda: len(net.peers) == 3)

    c1 = await _stranger(net, node, "c1", "127.0.0.4")  # full: one of 127.0.0.2's makes room
    await _until(lambda: key("c1").public_key in net.peers)
    assert len(net.peers) == 3 and key("b1").public_key in net.peers
    assert sum(key(n).public_key in net.peers for n in ("a1", "a2")) == 1

    producer = await _stranger(net, node, "producer-node", "127.0.0.5", producer=PRODUCER)
    await _until(lambda: key("producer-node").public_key in net.peers)
    churn = []
    for i in range(4):  # more strangers churn among themselves, never past the producer
        churn.append(await _stranger(net, node, f"d{i}", f"127.0.0.{10 + i}"))
        await _until(lambda: key(f"d{i}").public_key in net.peers)
    assert key("producer-node").public_key in net.peers and len(net.peers) == 3
    row = next(r for r in net.peer_list() if r["node_key"] == key("producer-node").public_key.hex())
    assert row["kept_because"] == "producer" and row["producer"] == PRODUCER.public_key.hex()
    assert row["direction"] == "inbound" and row["state"] == "connected"
    for _, writer in (a1, a2, a3, b1, c1, producer, *churn):
        writer.close()


async def test_a_producer_proof_that_does_not_verify_is_refused(lonely):
    node, start = lonely
    net = await start()
    reader, writer = await asyncio.open_connection("127.0.0.1", net.port)
    g = node.genesis
    ours = key("liar")
    writer.write(encode_frame(messages.hello(g.chain_id, g.hash, 0, g.hash, ours.public_key, bytes(32))))
    theirs = messages.parse_hello(await read_frame(reader))
    forged = messages.auth(ours, g.network, theirs.nonce, key("someone-else"))
    forged["producer"] = PRODUCER.public_key  # claims the real producer with another key's signature
    writer.write(encode_frame(forged))
    assert await _is_closed(reader)
    assert net.peers == {}
    writer.close()


async def test_an_unauthenticated_connection_may_not_announce_a_big_frame(lonely):
    node, start = lonely
    net = await start()
    reader, writer = await asyncio.open_connection("127.0.0.1", net.port)
    writer.write(limits.MIB.to_bytes(4, "big") + b"\x00" * 4096)  # 1 MiB announced, 4 KiB sent
    hello = await asyncio.wait_for(read_frame(reader), 5)  # the node's hello, then nothing more
    assert hello["type"] == "hello"
    # Closed at the length prefix, not after waiting for the rest until the handshake deadline.
    assert await _is_closed(reader, within=limits.HANDSHAKE_TIMEOUT / 2)
    writer.close()


async def test_pending_handshakes_are_bounded_in_number_and_time(lonely):
    """Silent connections from one address beyond PENDING_PER_ADDRESS are closed at once, the rest
    when the handshake deadline passes; a peer from elsewhere still gets in meanwhile."""
    node, start = lonely
    net = await start(handshake_timeout=1.5)
    silent = [await asyncio.open_connection("127.0.0.1", net.port, local_addr=("127.0.0.2", 0))
              for _ in range(limits.PENDING_PER_ADDRESS + 4)]
    closed_at_once = [await _is_closed(r, within=0.5) for r, _ in silent[limits.PENDING_PER_ADDRESS:]]
    assert all(closed_at_once)
    honest = await _stranger(net, node, "honest", "127.0.0.1")
    await _until(lambda: key("honest").public_key in net.peers)
    assert all([await _is_closed(r, within=5) for r, _ in silent[:limits.PENDING_PER_ADDRESS]])
    assert net._pending == {} and key("honest").public_key in net.peers
    for _, writer in [*silent, honest]:
        writer.close()


async def _answer_pings(reader, writer) -> None:
    while (msg := await read_frame(reader, 1 << 24)) is not None:
        if msg["type"] == "ping":
            writer.write(encode_frame(messages.pong(msg["nonce"])))


async def test_a_peer_that_does_not_answer_a_ping_in_time_is_dropped(lonely):
    node, start = lonely
    net = await start(ping_interval=0.2, ping_timeout=1.0)
    mute = await _stranger(net, node, "mute", "127.0.0.2")
    lively = await _stranger(net, node, "lively", "127.0.0.3")
    answering = asyncio.create_task(_answer_pings(*lively))
    await _until(lambda: key("mute").public_key not in net.peers)
    assert await _is_closed(mute[0])
    await asyncio.sleep(1.5)  # several more pings, all answered
    assert key("lively").public_key in net.peers
    assert not net._banned(key("mute").public_key.hex())  # a dead link, not misbehaviour
    answering.cancel()
    for _, writer in (mute, lively):
        writer.close()


async def test_a_sync_peer_that_never_answers_costs_score_and_another_is_asked(serving, tmp_path):
    node_a, net_a = serving  # 30 blocks
    node_b = _node(tmp_path, "b", _genesis())
    net_b = Network(node_b, key("node-b"), listen=("127.0.0.1", 0), sync_timeout=0.5)
    await net_b.start()
    try:
        reader, writer = await connect("127.0.0.1", net_b.port, node_b.genesis, key("braggart"), height=10**6,
                                       head=b"\x07" * 32)
        assert (await asyncio.wait_for(read_frame(reader), 5))["type"] == "get_blocks"
        assert net_b.add_peer("127.0.0.1", net_a.port) is True
        assert net_b.add_peer("127.0.0.1", net_a.port) is False  # dialled already
        await _until(lambda: node_b.head.hash == node_a.head.hash)
        braggart = net_b.peers[key("braggart").public_key]
        assert braggart.score == limits.SCORE_START - limits.COST_SYNC_TIMEOUT
        assert braggart.height <= node_b.head.height and not braggart.syncing
        _produce(node_a, 1)  # a new block: synced from A, the braggart is not asked again
        net_a.announce_block(node_a.store.canonical_block(31))
        await _until(lambda: node_b.head.height == 31)
        asked = []
        with pytest.raises(asyncio.TimeoutError):
            while True:
                asked.append((await asyncio.wait_for(read_frame(reader), 1.0))["type"])
        assert "get_blocks" not in asked, asked
        writer.close()
    finally:
        await net_b.stop()
        node_b.close()


async def test_a_late_answer_to_a_timed_out_sync_is_still_taken(serving, tmp_path):
    """Slow is not malicious: the timeout cost score once, the blocks that come late are applied,
    and the late batch is not scored as "blocks nobody asked for"."""
    node_a, _ = serving
    node_b = _node(tmp_path, "b", _genesis())
    net_b = Network(node_b, key("node-b"), listen=("127.0.0.1", 0), sync_timeout=0.3)
    await net_b.start()
    try:
        reader, writer = await connect("127.0.0.1", net_b.port, node_b.genesis, key("slow"), height=30,
                                       head=node_a.head.hash)
        assert (await asyncio.wait_for(read_frame(reader), 5))["type"] == "get_blocks"
        await _until(lambda: net_b.peers[key("slow").public_key].score < limits.SCORE_START)
        raw = [node_a.store.canonical_block(h).encode() for h in range(1, 31)]
        writer.write(encode_frame(messages.blocks(raw, 30), net_b.max_frame))
        await _until(lambda: node_b.head.hash == node_a.head.hash)
        assert net_b.peers[key("slow").public_key].score == limits.SCORE_START - limits.COST_SYNC_TIMEOUT
        writer.close()
    finally:
        await net_b.stop()
        node_b.close()


async def test_a_ban_can_be_lifted_at_run_time(lonely):
    node, start = lonely
    net = await start()
    reader, writer = await _stranger(net, node, "junk", "127.0.0.2")
    payload = encode({"type": "nonsense"})
    for _ in range(limits.SCORE_START // limits.COST_UNKNOWN_TYPE):
        writer.write(len(payload).to_bytes(4, "big") + payload)
    assert await _is_closed(reader)
    junk = key("junk").public_key.hex()
    assert net._banned(junk)
    assert [r["state"] for r in net.peer_list() if r["node_key"] == junk] == ["banned"]
    with pytest.raises(Refused):
        await _stranger(net, node, "junk", "127.0.0.2")
    assert net.unban(junk) is True
    assert net.unban(junk) is False  # nothing left to lift
    await _stranger(net, node, "junk", "127.0.0.2")
    await _until(lambda: key("junk").public_key in net.peers)
    with pytest.raises(ValueError, match="neither a node key"):
        net.unban("somebody")


async def test_ended_bans_of_keys_that_never_come_back_are_forgotten(lonely):
    node, start = lonely
    net = await start(ping_timeout=0.4)  # maintenance every 0.1 s
    net.bans.update({f"{i:064x}": 0.0 for i in range(1000)})  # ended long ago, never looked up again
    net.bans["127.0.0.1:1"] = float("inf")
    await _until(lambda: list(net.bans) == ["127.0.0.1:1"])


async def test_runtime_peers_are_bounded_by_max_outbound(lonely):
    node, start = lonely
    net = await start(slots=SlotLimits(max_outbound=1))
    assert net.add_peer("127.0.0.1", 9) is True
    with pytest.raises(PeerLimitError, match="max_outbound"):
        net.add_peer("127.0.0.1", 10)
    with pytest.raises(ValueError, match="HOST:PORT"):
        net.add_peer("", 10)
    assert [r["state"] for r in net.peer_list()] == ["dialling"]
    with pytest.raises(PeerLimitError):
        Network(node, key("x"), peers=["127.0.0.1:1", "127.0.0.1:2"], slots=SlotLimits(max_outbound=1))
    with pytest.raises(ValueError, match="max_inbound"):
        SlotLimits(max_inbound=0)


from tests.chain.network.test_network import serving  # noqa: E402,F401 - the fixture, shared

"""Two networks in one event loop: handshake refusal, batch sync, and peers that send junk."""

from __future__ import annotations

import asyncio

import pytest

from hub.chain.node.node import ChainNode
from hub.chain.p2p import messages
from hub.chain.p2p.frames import encode_frame, read_frame
from hub.chain.p2p.messages import Hello
from hub.chain.p2p.network import Network
from hub.chain.protocol import dpos
from hub.chain.protocol.block import Block, Header
from hub.crypto.encoding import encode
from hub.chain.protocol.constants import RUFF
from tests.chain.chainkit import GENESIS_TIME, Wallet, key, make_genesis
from tests.chain.network._raw import Refused, handshake

PRODUCER = key("p2p-producer")


def _genesis(balances=None, **kw):
    return make_genesis([PRODUCER], balances, **kw)


def _node(tmp_path, name, genesis, producing=False) -> ChainNode:
    return ChainNode(tmp_path / name, genesis, PRODUCER if producing else None)


def _produce(node: ChainNode, count: int) -> None:
    c = node.constants
    for _ in range(count):
        slot = node.head.slot + 1
        assert node.produce(dpos.slot_time(slot, GENESIS_TIME, c)) is not None


async def _until(predicate, timeout=5.0):
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.02)


@pytest.fixture
async def serving(tmp_path):
    """A producing node with 30 blocks, listening on a loopback port."""
    node = _node(tmp_path, "a", _genesis(), producing=True)
    _produce(node, 30)
    net = Network(node, key("node-a"), listen=("127.0.0.1", 0))
    await net.start()
    yield node, net
    await net.stop()
    node.close()


async def test_a_new_node_syncs_in_batches(serving, tmp_path, caplog):
    node_a, net_a = serving
    node_b = _node(tmp_path, "b", _genesis())
    net_b = Network(node_b, key("node-b"), peers=[f"127.0.0.1:{net_a.port}"], sync_batch=7)
    caplog.set_level("INFO", logger="hub.chain.p2p")
    await net_b.start()
    try:
        await _until(lambda: node_b.head.hash == node_a.head.hash)
        assert "synced 30/30 blocks" in caplog.text
        # A block produced later reaches B by gossip.
        _produce(node_a, 1)
        net_a.announce_block(node_a.store.canonical_block(31))
        await _until(lambda: node_b.head.height == 31)
    finally:
        await net_b.stop()
        node_b.close()


def test_hello_from_another_chain_or_genesis_is_refused(tmp_path):
    node = _node(tmp_path, "a", _genesis())
    net = Network(node, key("n"))
    g = node.genesis
    ok = Hello(messages.PROTOCOL_VERSION, g.chain_id, g.hash, 0, g.hash, key("other").public_key)
    assert net.check_hello(ok) is None
    v = messages.PROTOCOL_VERSION
    assert "another chain" in net.check_hello(Hello(v, "elsewhere", g.hash, 0, g.hash, ok.node_key))
    assert "another genesis" in net.check_hello(Hello(v, g.chain_id, b"\x01" * 32, 0, g.hash, ok.node_key))
    assert net.check_hello(Hello(v, g.chain_id, g.hash, 0, g.hash, key("n").public_key)) == "ourselves"
    assert "version" in net.check_hello(Hello(99, g.chain_id, g.hash, 0, g.hash, ok.node_key))
    node.close()


async def test_a_peer_cannot_claim_a_node_key_it_does_not_hold(serving, caplog):
    """An impostor names an honest peer's node key but cannot sign the challenge: it is refused,
    and the honest peer's connection, score and standing are untouched."""
    node_a, net_a = serving
    caplog.set_level("DEBUG", logger="hub.chain.p2p")  # a stranger's failed handshake is not a warning
    honest = key("honest-peer")
    reader, writer = await asyncio.open_connection("127.0.0.1", net_a.port)
    await handshake(reader, writer, node_a.genesis, honest)
    await _until(lambda: honest.public_key in net_a.peers)
    registered = net_a.peers[honest.public_key]

    r2, w2 = await asyncio.open_connection("127.0.0.1", net_a.port)
    g = node_a.genesis
    w2.write(encode_frame(messages.hello(g.chain_id, g.hash, 0, g.hash, honest.public_key, b"\x01" * 32)))
    await w2.drain()
    theirs = messages.parse_hello(await read_frame(r2))
    # Signed with the impostor's own key over the right challenge: does not prove the claimed key.
    w2.write(encode_frame(messages.auth(key("impostor"), g.network, theirs.nonce)))
    await w2.drain()
    assert await asyncio.wait_for(_closed(r2), 5)
    w2.close()
    assert "does not prove the node key" in caplog.text
    assert net_a.peers.get(honest.public_key) is registered and not registered.closed.is_set()
    assert registered.score == 100 and not net_a._banned(honest.public_key.hex())
    writer.close()


def test_a_hello_of_another_protocol_version_names_the_version():
    old = {"type": "hello", "version": 1, "chain_id": "c", "genesis": b"g" * 32, "height": 0, "head": b"h" * 32,
           "node_key": b"k" * 32}
    with pytest.raises(messages.BadMessage, match=f"protocol version 1, this node speaks {messages.PROTOCOL_VERSION}"):
        messages.parse_hello(old)


async def test_a_node_of_another_genesis_is_not_connected(serving, tmp_path):
    node_a, net_a = serving
    other = _node(tmp_path, "c", _genesis(BLOCK_INTERVAL=600))  # same chain id, another genesis hash
    net_c = Network(other, key("node-c"), peers=[f"127.0.0.1:{net_a.port}"])
    await net_c.start()
    try:
        await asyncio.sleep(0.5)
        assert net_c.peers == {} and net_a.peers == {}
        assert other.head.height == 0
    finally:
        await net_c.stop()
        other.close()


async def _raw_peer(net: Network, node: ChainNode, name: str):
    reader, writer = await asyncio.open_connection("127.0.0.1", net.port)
    await handshake(reader, writer, node.genesis, key(name))
    return reader, writer


async def _closed(reader) -> bool:
    try:
        while True:
            if await read_frame(reader, 10**8) is None:
                return True
    except Exception:  # noqa: BLE001 - reset or truncated: closed as well
        return True


async def test_garbage_lowers_the_score_until_the_peer_is_dropped_and_banned(serving):
    node_a, net_a = serving
    head = node_a.head
    reader, writer = await _raw_peer(net_a, node_a, "junk")
    garbage = [b"\xff\xfe", encode({"type": "announce_block", "block": b"not a block"}),
               encode({"type": "nonsense"}), encode({"type": "announce_tx", "tx": b"\x00" * 50}),
               encode({"type": "blocks", "blocks": [], "height": 1})]
    for payload in garbage * 4:
        writer.write(len(payload).to_bytes(4, "big") + payload)
    await writer.drain()
    assert await asyncio.wait_for(_closed(reader), 5)
    writer.close()
    assert net_a._banned(key("junk").public_key.hex())
    assert node_a.head == head
    # Banned: a new connection with the same node key is refused at the handshake.
    with pytest.raises(Refused):
        await _raw_peer(net_a, node_a, "junk")


async def test_an_oversized_frame_ends_the_connection_but_not_the_node(serving, tmp_path):
    node_a, net_a = serving
    reader, writer = await _raw_peer(net_a, node_a, "big")
    writer.write((net_a.max_frame + 1).to_bytes(4, "big") + b"\x00" * 1000)
    await writer.drain()
    assert await asyncio.wait_for(_closed(reader), 5)
    writer.close()
    # The node still serves honest peers.
    reader, writer = await _raw_peer(net_a, node_a, "honest")
    writer.write(encode_frame(messages.get_blocks(1, 5)))
    await writer.drain()
    reply = await asyncio.wait_for(read_frame(reader, net_a.max_frame), 5)
    assert reply["type"] == "blocks" and len(reply["blocks"]) == 5 and reply["height"] == 30
    writer.close()


async def test_a_peer_that_does_not_read_is_dropped_not_waited_for(serving):
    node_a, net_a = serving
    reader, writer = await _raw_peer(net_a, node_a, "slow")
    await _until(lambda: len(net_a.peers) == 1)
    peer = next(iter(net_a.peers.values()))
    big = messages.announce_tx(b"\x00" * 60_000)
    sent = 0
    while peer.send(big) and sent < 100_000:  # never awaits: the queue fills, the peer is closed
        sent += 1
    assert peer.closed.is_set() and "too slow" in peer.close_reason
    writer.close()


async def test_a_block_the_node_refuses_scores_the_sender_down_and_changes_nothing(serving):
    node_a, net_a = serving
    head = node_a.head
    # Well formed and correctly signed, but by a key that owns no slot: the node refuses it.
    intruder = key("not-a-producer")
    h = node_a.store.canonical_block(head.height).header
    fake = Header(chain_id=h.chain_id, height=head.height + 1, round=h.round, slot=head.slot + 1,
                  timestamp=h.timestamp + 500, prev_hash=head.hash, tx_root=h.tx_root, state_hash=h.state_hash,
                  producer=intruder.public_key).signed(intruder, node_a.genesis.hash)
    reader, writer = await _raw_peer(net_a, node_a, "liar")
    await _until(lambda: len(net_a.peers) == 1)
    peer = next(iter(net_a.peers.values()))
    writer.write(encode_frame(messages.announce_block(Block(fake).encode())))
    await writer.drain()
    await _until(lambda: peer.score < 100)
    assert node_a.head == head and not node_a.store.has_block(Block(fake).hash)
    writer.close()


async def test_an_announced_block_with_an_unknown_parent_fetches_the_gap(serving, tmp_path):
    node_a, net_a = serving
    node_b = _node(tmp_path, "b", _genesis())
    net_b = Network(node_b, key("node-b"), listen=("127.0.0.1", 0))
    await net_b.start()
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", net_b.port)
        # A peer that claims height 0 (so B does not sync from it on its own) and then announces block 30.
        await handshake(reader, writer, node_b.genesis, key("announcer"))
        writer.write(encode_frame(messages.announce_block(node_a.store.canonical_block(30).encode())))
        await writer.drain()
        request = await asyncio.wait_for(read_frame(reader), 5)
        assert request == messages.get_blocks(1, 200)
        raw = [node_a.store.canonical_block(h).encode() for h in range(1, 31)]
        writer.write(encode_frame(messages.blocks(raw, 30), net_b.max_frame))
        await writer.drain()
        await _until(lambda: node_b.head.hash == node_a.head.hash)
        writer.close()
    finally:
        await net_b.stop()
        node_b.close()


async def test_a_block_refused_for_a_passing_reason_is_taken_when_announced_again(serving, tmp_path, monkeypatch):
    """Block 2 announced before block 1: its parent is unknown, a passing reason, so it must not be
    remembered as seen; announced again once block 1 is here, it is applied. A block proven
    invalid is remembered: announced again, it is not even decoded."""
    node_a, _ = serving
    node_b = _node(tmp_path, "b", _genesis())
    net_b = Network(node_b, key("node-b"), listen=("127.0.0.1", 0))
    first, second = (node_a.store.canonical_block(h).encode() for h in (1, 2))
    h = node_a.store.canonical_block(2).header
    intruder = key("not-a-producer")
    invalid = Block(Header(**{**h.body(), "producer": intruder.public_key}).signed(intruder, node_a.genesis.hash)).encode()
    decoded = []
    real_decode = Block.decode
    monkeypatch.setattr(Block, "decode", classmethod(lambda cls, raw: decoded.append(raw) or real_decode(raw)))
    await net_b.start()
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", net_b.port)
        await handshake(reader, writer, node_b.genesis, key("early-announcer"))  # it never answers a request
        await _until(lambda: len(net_b.peers) == 1)
        for raw in (second, first):
            writer.write(encode_frame(messages.announce_block(raw)))
            await writer.drain()
        await _until(lambda: node_b.head.height == 1)
        writer.write(encode_frame(messages.announce_block(second)))
        await writer.drain()
        await _until(lambda: node_b.head.height == 2)  # before: dropped as already seen, B stuck at 1
        for _ in range(2):
            writer.write(encode_frame(messages.announce_block(invalid)))
            await writer.drain()
        await _until(lambda: invalid in decoded)
        await asyncio.sleep(0.2)  # the second copy has been read
        assert decoded.count(invalid) == 1 and not node_b.store.has_block(real_decode(invalid).hash)
        writer.close()
    finally:
        await net_b.stop()
        node_b.close()


async def test_a_block_announced_by_several_peers_is_decoded_once(serving, tmp_path, monkeypatch):
    """Every peer relays a new block; copies of bytes already handled are dropped undecoded."""
    node_a, _ = serving
    node_b = _node(tmp_path, "b", _genesis())
    net_b = Network(node_b, key("node-b"), listen=("127.0.0.1", 0))
    block = node_a.store.canonical_block(1).encode()
    decoded = []
    real_decode = Block.decode
    monkeypatch.setattr(Block, "decode", classmethod(lambda cls, raw: decoded.append(raw) or real_decode(raw)))
    await net_b.start()
    try:
        writers = []
        for name in ("first", "second", "third"):
            reader, writer = await asyncio.open_connection("127.0.0.1", net_b.port)
            await handshake(reader, writer, node_b.genesis, key(name))
            writers.append(writer)
        await _until(lambda: len(net_b.peers) == 3)
        for writer in writers:
            writer.write(encode_frame(messages.announce_block(block)))
            await writer.drain()
            await _until(lambda: node_b.head.height == 1)
        await asyncio.sleep(0.2)  # the later copies have been read
        assert decoded == [block]
        for writer in writers:
            writer.close()
    finally:
        await net_b.stop()
        node_b.close()


async def test_a_peer_that_claims_blocks_it_does_not_send_is_not_asked_forever(tmp_path):
    node_b = _node(tmp_path, "b", _genesis())
    net_b = Network(node_b, key("node-b"), listen=("127.0.0.1", 0))
    await net_b.start()
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", net_b.port)
        await handshake(reader, writer, node_b.genesis, key("braggart"), height=100, head=b"\x07" * 32)
        assert await asyncio.wait_for(read_frame(reader), 5) == messages.get_blocks(1, 200)
        await _until(lambda: len(net_b.peers) == 1)
        peer = next(iter(net_b.peers.values()))
        writer.write(encode_frame(messages.blocks([], 100)))
        await writer.drain()
        await _until(lambda: peer.score < 100)
        assert peer.height == 0 and not peer.syncing
        with pytest.raises(asyncio.TimeoutError):  # not asked again: it has shown it has nothing
            await asyncio.wait_for(read_frame(reader), 1.5)
        writer.close()
    finally:
        await net_b.stop()
        node_b.close()


async def _gossiping_node(tmp_path, sender):
    """A started non-producing node "node-a" listening on loopback, ``sender`` funded, its clock a
    second after genesis: what the gossip tests talk to through raw connections."""
    g = _genesis(balances={sender: 1000 * RUFF})
    node = _node(tmp_path, "a", g)
    net = Network(node, key("node-a"), listen=("127.0.0.1", 0), clock=lambda: GENESIS_TIME + 1000)
    await net.start()
    return g, node, net


async def test_in_a_full_mesh_each_transaction_crosses_each_link_once(tmp_path):
    """Three nodes, each peered with both others; 60 transfers admitted and announced by one.
    Every node gets every transfer, and each of the other two receives each exactly once: from
    the origin, with no relayed copy from the third (before ``also``: 120 each)."""
    sender = key("mesh-sender")
    g = _genesis(balances={sender: 1000 * RUFF})
    nodes = [_node(tmp_path, name, g) for name in "abc"]
    clock = lambda: GENESIS_TIME + 1000  # noqa: E731
    a = Network(nodes[0], key("mesh-a"), listen=("127.0.0.1", 0), clock=clock)
    await a.start()
    b = Network(nodes[1], key("mesh-b"), listen=("127.0.0.1", 0), peers=[f"127.0.0.1:{a.port}"], clock=clock)
    await b.start()
    c = Network(nodes[2], key("mesh-c"), peers=[f"127.0.0.1:{a.port}", f"127.0.0.1:{b.port}"], clock=clock)
    await c.start()
    received = {b: 0, c: 0}
    for net in (b, c):
        original = net._receive_txs

        async def counting(peer, raws, also=(), net=net, original=original):
            received[net] += len(raws)
            await original(peer, raws, also)
        net._receive_txs = counting
    try:
        await _until(lambda: all(len(n.peers) == 2 for n in (a, b, c)))
        wallet = Wallet(sender, g)
        for _ in range(60):
            tx = wallet.send(key("someone"), 1, fee=RUFF // 100)
            nodes[0].submit(tx.raw, GENESIS_TIME + 1000)
            a.announce_tx(tx.raw, tx.hash)
        await _until(lambda: all(len(n.mempool) == 60 for n in nodes))
        await asyncio.sleep(0.5)  # time for any relay to arrive
        assert received == {b: 60, c: 60}
    finally:
        for net in (c, b, a):
            await net.stop()
        for node in nodes:
            node.close()


async def test_transactions_are_not_relayed_to_the_peers_their_frame_also_went_to(tmp_path):
    """A frame that names the other peers it was sent to (``also``): the node passes its
    transactions on only to peers the frame did not name. In a full mesh that leaves no redundant
    relay at all, while a node between two others still relays to the one the sender cannot reach."""
    sender = key("also-sender")
    g, node, net = await _gossiping_node(tmp_path, sender)
    try:
        conns = {}
        for name in ("origin", "named", "unnamed"):
            conns[name] = await asyncio.open_connection("127.0.0.1", net.port)
            await handshake(*conns[name], g, key(name))
        await _until(lambda: len(net.peers) == 3)
        wallet = Wallet(sender, g)
        raws = [wallet.send(key("someone"), 1, fee=RUFF // 100).raw for _ in range(5)]
        writer = conns["origin"][1]
        writer.write(encode_frame(messages.announce_txs(raws, [key("node-a").public_key, key("named").public_key])))
        await writer.drain()
        await _until(lambda: len(node.mempool) == 5)
        msg = await asyncio.wait_for(read_frame(conns["unnamed"][0], net.max_frame), 5)
        assert msg == messages.announce_txs(raws)
        with pytest.raises(asyncio.TimeoutError):  # the named peer has them from the origin already
            while True:
                msg = await asyncio.wait_for(read_frame(conns["named"][0], net.max_frame), 0.5)
                assert msg["type"] != "announce_txs", "relayed to a peer the frame said it went to"
        for _, w in conns.values():
            w.close()
    finally:
        await net.stop()
        node.close()


async def test_transactions_are_gossiped_in_batches_and_not_echoed(tmp_path):
    """Three hundred transfers arrive in two frames from one peer: the node admits them all with
    one check each, passes them on to its other peer in a frame or two (not 300), and sends none
    back to where they came from."""
    sender = key("gossip-sender")
    g, node, net = await _gossiping_node(tmp_path, sender)
    try:
        r_in, w_in = await asyncio.open_connection("127.0.0.1", net.port)
        await handshake(r_in, w_in, g, key("peer-in"))
        r_out, w_out = await asyncio.open_connection("127.0.0.1", net.port)
        await handshake(r_out, w_out, g, key("peer-out"))
        await _until(lambda: len(net.peers) == 2)
        wallet = Wallet(sender, g)
        raws = [wallet.send(key("someone"), 1, fee=RUFF // 100).raw for _ in range(300)]
        for part in (raws[:150], raws[150:]):
            w_in.write(encode_frame(messages.announce_txs(part), net.max_frame))
        await w_in.drain()
        await _until(lambda: len(node.mempool) == 300)

        relayed, frames = [], 0
        while len(relayed) < 300:
            msg = await asyncio.wait_for(read_frame(r_out, net.max_frame), 5)
            if msg["type"] == "announce_txs":
                frames += 1
                relayed += msg["txs"]
        assert sorted(relayed) == sorted(raws) and frames <= 4
        with pytest.raises(asyncio.TimeoutError):  # nothing echoed to the peer they came from
            while True:
                msg = await asyncio.wait_for(read_frame(r_in, net.max_frame), 0.3)
                assert msg["type"] != "announce_txs", "transactions were sent back to their source"
        # This node's own transactions (its RPC, the CLI) go to every peer, the one above included.
        own = wallet.send(key("someone"), 1, fee=RUFF // 100)
        node.submit(own.raw, GENESIS_TIME + 1000)
        net.announce_tx(own.raw, own.hash)
        for reader in (r_in, r_out):  # one frame for both, naming both
            msg = await asyncio.wait_for(read_frame(reader, net.max_frame), 5)
            assert msg["txs"] == [own.raw] and set(msg["also"]) == {key("peer-in").public_key, key("peer-out").public_key}
        # ... but not to a peer known to have it already (it sent it to us meanwhile).
        other = wallet.send(key("someone"), 1, fee=RUFF // 100)
        node.submit(other.raw, GENESIS_TIME + 1000)
        net.peers[key("peer-out").public_key].known_txs.add(other.hash)
        net.announce_tx(other.raw, other.hash)
        assert await asyncio.wait_for(read_frame(r_in, net.max_frame), 5) == messages.announce_txs([other.raw])
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(read_frame(r_out, net.max_frame), 0.3)
        # A batch with forged transactions costs the sender as much as sending them one by one.
        forged = [raw[:-1] + bytes([raw[-1] ^ 1]) for raw in (wallet.send(key("x"), 1).raw for _ in range(3))]
        peer_in = net.peers[key("peer-in").public_key]
        w_in.write(encode_frame(messages.announce_txs(forged)))
        await w_in.drain()
        await _until(lambda: peer_in.score <= 100 - 3 * 10)
        for w in (w_in, w_out):
            w.close()
    finally:
        await net.stop()
        node.close()


async def test_a_block_is_not_held_up_by_transactions_waiting_for_admission(tmp_path):
    """Under load a node admits gossiped transactions more slowly than they come. A block the same
    peer sends after them must still be applied at once (late blocks fork the chain), and the
    waiting transactions are admitted afterwards, none lost."""
    source = _node(tmp_path, "src", _genesis(balances={key("busy-sender"): 1000 * RUFF}), producing=True)
    node = _node(tmp_path, "a", source.genesis)
    net = Network(node, key("node-a"), listen=("127.0.0.1", 0), clock=lambda: GENESIS_TIME + 1000)
    admitting, release = asyncio.Event(), __import__("threading").Event()
    real_submit = node.submit_many

    def slow_submit(raws, now):  # admission stuck (a long batch of signature checks)
        loop.call_soon_threadsafe(admitting.set)
        release.wait(10)
        return real_submit(raws, now)

    loop = asyncio.get_running_loop()
    node.submit_many = slow_submit
    await net.start()
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", net.port)
        await handshake(reader, writer, node.genesis, key("busy-peer"))
        wallet = Wallet(key("busy-sender"), node.state)
        raws = [wallet.send(key("someone"), 1, fee=RUFF // 100).raw for _ in range(50)]
        writer.write(encode_frame(messages.announce_txs(raws), net.max_frame))
        _produce(source, 1)
        writer.write(encode_frame(messages.announce_block(source.store.canonical_block(1).encode()), net.max_frame))
        await writer.drain()
        await asyncio.wait_for(admitting.wait(), 5)
        await _until(lambda: node.head.height == 1)  # while the transactions still wait
        assert len(node.mempool) == 0
        release.set()
        await _until(lambda: len(node.mempool) == 50)
        writer.close()
    finally:
        release.set()
        await net.stop()
        node.close()
        source.close()


def test_transaction_admission_waits_while_a_block_is_handled(tmp_path, monkeypatch):
    import threading

    from hub.chain.node import node as node_module

    monkeypatch.setattr(node_module, "BLOCK_PRIORITY_WAIT", 60.0)  # it waits for the block, not a timer
    sender = key("prio-sender")
    node = _node(tmp_path, "a", _genesis(balances={sender: 1000 * RUFF}))
    raws = [Wallet(sender, node.state).send(key("someone"), 1, fee=RUFF // 100).raw]
    done = threading.Event()
    with node.block_work():
        worker = threading.Thread(target=lambda: (node.submit_many(raws, GENESIS_TIME + 1000), done.set()))
        worker.start()
        assert not done.wait(0.2), "admission went ahead of the block"
    assert done.wait(5) and len(node.mempool) == 1
    worker.join()
    node.close()


async def test_a_transaction_refused_for_a_passing_reason_is_taken_when_gossiped_again(tmp_path):
    """Nonce 2 gossiped before nonce 1 is refused (nonce too high), a passing reason: it must not be
    remembered as seen, or its next copy, after nonce 1, would be dropped unread."""
    sender = key("early-nonce-sender")
    g, node, net = await _gossiping_node(tmp_path, sender)
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", net.port)
        await handshake(reader, writer, g, key("gossiper"))
        await _until(lambda: len(net.peers) == 1)
        wallet = Wallet(sender, g)
        first, second = wallet.send(key("someone"), 1), wallet.send(key("someone"), 2)
        for tx in (second, first):
            writer.write(encode_frame(messages.announce_txs([tx.raw])))
            await writer.drain()
        # Both judged: nonce 1 admitted, nonce 2 refused and (the fix) no longer marked seen.
        await _until(lambda: first.hash in node.mempool and second.hash not in net.seen_txs)
        assert second.hash not in node.mempool
        writer.write(encode_frame(messages.announce_txs([second.raw])))
        await writer.drain()
        await _until(lambda: second.hash in node.mempool)
        writer.close()
    finally:
        await net.stop()
        node.close()


async def test_gossip_of_a_transaction_already_in_a_block_is_dropped_unread(tmp_path):
    sender = key("late-sender")
    source = _node(tmp_path, "src", _genesis(balances={sender: 1000 * RUFF}), producing=True)
    node = _node(tmp_path, "a", source.genesis)
    tx = Wallet(sender, node.state).send(key("someone"), 1, fee=RUFF // 100)
    source.submit(tx.raw, GENESIS_TIME + 1000)
    _produce(source, 1)
    assert node.receive_block(source.store.canonical_block(1)).status == "applied"
    assert node.recently_included(tx.hash)
    net = Network(node, key("node-a"), listen=("127.0.0.1", 0), clock=lambda: GENESIS_TIME + 1000)
    decoded = []
    real_submit = node.submit_many
    node.submit_many = lambda raws, now: decoded.extend(raws) or real_submit(raws, now)
    await net.start()
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", net.port)
        await handshake(reader, writer, node.genesis, key("late-peer"))
        await _until(lambda: len(net.peers) == 1)
        fresh = Wallet(sender, node.state).send(key("someone"), 2, fee=RUFF // 100, nonce=2)
        writer.write(encode_frame(messages.announce_txs([tx.raw, fresh.raw]), net.max_frame))
        await writer.drain()
        await _until(lambda: len(node.mempool) == 1)
        assert decoded == [fresh.raw] and fresh.hash in node.mempool
        writer.close()
    finally:
        await net.stop()
        node.close()
        source.close()


async def test_a_failing_admission_batch_does_not_stop_later_ones(tmp_path, caplog):
    sender = key("unlucky-sender")
    node = _node(tmp_path, "a", _genesis(balances={sender: 1000 * RUFF}))
    net = Network(node, key("node-a"), listen=("127.0.0.1", 0), clock=lambda: GENESIS_TIME + 1000)
    real_submit, calls = node.submit_many, []

    def flaky(raws, now):
        calls.append(len(raws))
        if len(calls) == 1:
            raise OSError("disk full")  # e.g. the store failing under the mempool's checks
        return real_submit(raws, now)

    node.submit_many = flaky
    await net.start()
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", net.port)
        await handshake(reader, writer, node.genesis, key("flaky-peer"))
        wallet = Wallet(sender, node.state)
        first = wallet.send(key("someone"), 1, fee=RUFF // 100)
        writer.write(encode_frame(messages.announce_txs([first.raw])))
        await writer.drain()
        await _until(lambda: len(calls) == 1)
        await asyncio.sleep(0.05)
        # the failed one is welcome again, and what comes next is admitted
        writer.write(encode_frame(messages.announce_txs([first.raw, wallet.send(key("someone"), 2, fee=RUFF // 100).raw])))
        await writer.drain()
        await _until(lambda: len(node.mempool) == 2)
        assert "admitting gossiped transactions failed" in caplog.text
        writer.close()
    finally:
        await net.stop()
        node.close()


def test_admission_under_the_node_lock_does_not_wait_for_block_work(tmp_path, monkeypatch):
    """The CLI inbox is admitted while holding the node lock; the block work it would wait for
    needs that lock, so it must go straight on (not stall both for BLOCK_PRIORITY_WAIT)."""
    import threading

    from hub.chain.node import node as node_module

    monkeypatch.setattr(node_module, "BLOCK_PRIORITY_WAIT", 60.0)
    sender = key("inbox-sender")
    node = _node(tmp_path, "a", _genesis(balances={sender: 1000 * RUFF}))
    raw = Wallet(sender, node.state).send(key("someone"), 1, fee=RUFF // 100).raw
    done = threading.Event()

    def admit_under_lock():
        with node.lock:
            node.submit(raw, GENESIS_TIME + 1000)
        done.set()

    with node.block_work():
        threading.Thread(target=admit_under_lock, daemon=True).start()
        assert done.wait(10), "admission under the node lock waited for the block work"
    assert len(node.mempool) == 1
    node.close()

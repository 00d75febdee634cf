"""The node shell: mempool policy, producing, restarts, fork choice, reorganisations and finality."""

from __future__ import annotations

import copy

import pytest

from hub.chain.node.mempool import SWEEP_MS, Mempool
from hub.chain.node.node import ChainError, ChainNode
from hub.chain.protocol import dpos, transition
from hub.chain.protocol.block import Block, Header
from hub.chain.protocol.constants import RUFF
from hub.chain.protocol.errors import BlockRejected, Reason, TxRejected

from tests.chain.chainkit import CHAIN, GENESIS_TIME, Sim, Wallet, addr, key, make_genesis

PRODUCERS = [key(f"producer{i}") for i in range(4)]
ALICE, BOB, CAROL = key("alice"), key("bob"), key("carol")
BALANCES = {ALICE: 100 * RUFF, BOB: 100 * RUFF, CAROL: 100 * RUFF}
NOW = GENESIS_TIME + 10_000


def genesis(**kw):
    return make_genesis(PRODUCERS, BALANCES, **kw)


# --- mempool ------------------------------------------------------------------------------------


def reason(fn) -> Reason:
    with pytest.raises(TxRejected) as info:
        fn()
    return info.value.reason


def test_mempool_orders_by_fee_but_keeps_each_senders_nonce_order():
    state = genesis().state()
    pool = Mempool(state.network)
    a, b = Wallet(ALICE, state), Wallet(BOB, state)
    a1 = a.send(CAROL, 1, fee=20_000)
    a2 = a.send(CAROL, 1, fee=90_000)
    b1 = b.send(CAROL, 1, fee=50_000)
    for tx in (a1, b1, a2):
        pool.add(tx, state, NOW)
    assert [t.hash for t in pool.select()] == [b1.hash, a1.hash, a2.hash]


def test_mempool_entry_rules():
    state = genesis().state()
    pool = Mempool(state.network, max_txs=3)
    a = Wallet(ALICE, state)
    first = a.send(BOB, 1, fee=20_000)
    pool.add(first, state, NOW)
    assert reason(lambda: pool.add(first, state, NOW)) is Reason.DUPLICATE
    assert reason(lambda: pool.add(a.send(BOB, 1, nonce=3), state, NOW)) is Reason.NONCE_TOO_HIGH  # gap
    assert reason(lambda: pool.add(a.send(BOB, 1, nonce=0), state, NOW)) is Reason.NONCE_TOO_LOW
    assert reason(lambda: pool.add(a.send(BOB, 2, nonce=1, fee=20_000), state, NOW)) is Reason.REPLACEMENT_FEE_TOO_LOW
    better = a.send(BOB, 1, nonce=1, fee=30_000)
    pool.add(better, state, NOW)
    assert first.hash not in pool and better.hash in pool and len(pool) == 1
    # Balance counts the pending transactions too.
    assert reason(lambda: pool.add(a.send(BOB, 100 * RUFF - 10_000, nonce=2), state, NOW)) is Reason.INSUFFICIENT_BALANCE
    assert reason(lambda: pool.add(a.send(BOB, 1, nonce=2, valid_until=NOW - 1), state, NOW)) is Reason.EXPIRED
    # Size bound: full of better-paying transactions, a cheap one is refused; a richer one evicts.
    pool.add(Wallet(BOB, state).send(ALICE, 1, fee=40_000), state, NOW)
    pool.add(Wallet(CAROL, state).send(ALICE, 1, fee=50_000), state, NOW)
    assert reason(lambda: pool.add(a.send(BOB, 1, nonce=2, fee=10_000), state, NOW)) is Reason.MEMPOOL_FULL
    rich = Wallet(key("dave"), state)
    state.begin(), state.set("acct", addr(rich.key), (RUFF, 0)), state.commit()
    pool.add(rich.send(ALICE, 1, fee=60_000), state, NOW)
    assert len(pool) == 3 and min(t.fee for t in pool.by_hash.values()) == 40_000


def test_what_a_sender_has_pending_is_counted_against_its_balance_until_it_leaves():
    state = genesis().state()
    pool = Mempool(state.network)
    a = Wallet(ALICE, state)
    pending = [a.send(BOB, 30 * RUFF, fee=10_000) for _ in range(3)]  # 90 RUFF of alice's 100
    for tx in pending:
        pool.add(tx, state, NOW)
    assert reason(lambda: pool.add(a.send(BOB, 10 * RUFF), state, NOW)) is Reason.INSUFFICIENT_BALANCE
    pool.remove(pending[2:])  # the last one leaves: 30 RUFF are free again
    assert pool.spend[addr(ALICE)] == 2 * (30 * RUFF + 10_000)
    pool.add(a.send(BOB, 30 * RUFF, nonce=3, fee=10_000), state, NOW)
    pool.remove(list(pool.by_hash.values()))  # all gone: nothing is counted against alice any more
    assert addr(ALICE) not in pool.spend and addr(ALICE) not in pool.by_sender and not len(pool)


def test_mempool_prunes_expired_and_included():
    state = genesis().state()
    pool = Mempool(state.network)
    a = Wallet(ALICE, state)
    soon = a.send(BOB, 1, valid_until=NOW + 5)
    after = a.send(BOB, 1)
    pool.add(soon, state, NOW)
    pool.add(after, state, NOW)
    pool.prune(state, NOW + 10)
    assert len(pool) == 0  # the first expired, the second would now leave a gap


def test_mempool_prunes_a_blocks_senders_at_once_and_everyone_at_the_expiry_sweep():
    state = genesis().state()
    pool = Mempool(state.network)
    alice, bob = Wallet(ALICE, state), Wallet(BOB, state)
    pool.prune(state, NOW)  # the first call sweeps; the next sweep is due SWEEP_MS later
    included, waiting = alice.send(CAROL, 1), alice.send(CAROL, 1)
    expiring = bob.send(CAROL, 1, valid_until=NOW + 5)
    for tx in (included, waiting, expiring):
        pool.add(tx, state, NOW)
    state.begin(), state.set("acct", addr(ALICE), (99 * RUFF, 1)), state.commit()  # a block took alice's nonce 1
    pool.prune(state, NOW + 10, {addr(ALICE)})
    assert included.hash not in pool and waiting.hash in pool  # alice's stale one goes at once
    assert expiring.hash in pool  # bob was not in the block and no sweep is due yet
    pool.prune(state, NOW + SWEEP_MS + 1, ())
    assert expiring.hash not in pool and waiting.hash in pool


# --- a node producing ----------------------------------------------------------------------------


def single(tmp_path, **kw) -> ChainNode:
    g = make_genesis([PRODUCERS[0]], BALANCES, **kw)
    return ChainNode(tmp_path / "chain", g, PRODUCERS[0])


def test_single_producer_node_includes_submitted_transactions_and_survives_a_restart(tmp_path):
    node = single(tmp_path)
    w = Wallet(ALICE, node.state)
    txs = [w.send(BOB, RUFF) for _ in range(3)]
    for tx in txs:
        node.submit(tx.raw, NOW)
    assert node.produce(GENESIS_TIME + 499) is None  # still slot 0, the genesis
    block = node.produce(GENESIS_TIME + 500)
    assert [t for t in block.txs] == [t.raw for t in txs]
    assert node.produce(GENESIS_TIME + 700) is None  # one block per slot
    for slot in range(2, 6):
        node.produce(GENESIS_TIME + 500 * slot)
    digest, head = node.state.digest(), node.head
    assert node.store.tx_location(txs[1].hash) == (1, 1)
    node.close()
    again = single(tmp_path)
    assert again.state.digest() == digest and again.head == head and again.lib == head.height - 1
    assert again.state.balance(addr(BOB)) == 103 * RUFF
    again.close()


def test_a_bad_transaction_never_stops_the_node(tmp_path):
    node = single(tmp_path)
    node.store.add_to_inbox(b"x" * 32, b"\xff garbage")
    bad_sig = Wallet(ALICE, node.state).send(BOB, 1)
    node.store.add_to_inbox(b"y" * 32, bad_sig.raw[:-3] + b"abc")
    good = Wallet(BOB, node.state).send(ALICE, 1)
    node.store.add_to_inbox(good.hash, good.raw)
    results = dict(node.drain_inbox(NOW))
    assert results[good.hash] == "pending"
    assert results[b"x" * 32].startswith("rejected: bad_encoding")
    assert node.store.inbox_status(b"x" * 32).startswith("rejected")
    block = node.produce(GENESIS_TIME + 500)
    assert block.txs == (good.raw,)
    assert node.store.inbox_status(good.hash) is None  # included: the row is gone


def test_another_genesis_is_refused(tmp_path):
    single(tmp_path).close()
    with pytest.raises(ChainError, match="another chain"):
        ChainNode(tmp_path / "chain", make_genesis([PRODUCERS[1]], BALANCES), PRODUCERS[1])


# --- forks ---------------------------------------------------------------------------------------


def follower(tmp_path) -> ChainNode:
    return ChainNode(tmp_path / "follower", genesis(), None)


def test_competing_branches_the_longest_wins_and_state_follows(tmp_path):
    g = genesis()
    main = Sim(g, PRODUCERS)
    node = follower(tmp_path)
    tx = Wallet(ALICE, main).send(BOB, 7 * RUFF)
    node.submit(tx.raw, NOW)
    a1 = main.next_block([tx])
    node.receive_block(a1.block)
    fork = copy.deepcopy(main)
    for _ in range(2):
        assert node.receive_block(main.next_block().block).status == "applied"
    # The fork skips a slot (its producer was cut off) and then grows longer.
    b2 = fork.next_block([Wallet(CAROL, main).send(ALICE, 3 * RUFF)], skip=1)
    assert node.receive_block(b2.block).status == "side"
    b3 = fork.next_block()
    main_tip = node.head.hash
    # Equal height: the lower hash decides. Which one that is depends on every header byte, so the
    # test asks the rule rather than assuming an outcome the header format happens to give.
    switched = b3.block.hash < main_tip
    assert node.receive_block(b3.block).status == ("reorganised" if switched else "side")
    b4 = fork.next_block()
    result = node.receive_block(b4.block)
    assert result.status == ("applied" if switched else "reorganised") and node.head == fork.state.head
    assert node.state.digest() == fork.state.digest()
    assert node.state.balance(addr(ALICE)) == fork.state.balance(addr(ALICE))
    assert node.store.tx_location(tx.hash) == (1, 0)
    node.close()
    reopened = follower(tmp_path)
    assert reopened.state.digest() == fork.state.digest() and reopened.head == fork.state.head


def test_a_reorganisation_puts_every_reverted_transaction_back_in_the_mempool(tmp_path):
    """Two blocks with one sender's nonces 1 and 2 are reverted by a longer branch without them:
    both must be pending again (re-added newest block first, nonce 2 was refused and lost)."""
    main = Sim(genesis(), PRODUCERS)
    fork = copy.deepcopy(main)
    node = follower(tmp_path)
    alice = Wallet(ALICE, main)
    first, second = alice.send(BOB, RUFF), alice.send(BOB, RUFF)
    for tx in (first, second):
        node.submit(tx.raw, NOW)
    node.receive_block(main.next_block([first]).block)
    node.receive_block(main.next_block([second]).block)
    assert len(node.mempool) == 0 and node.recently_included(first.hash)
    branch = [fork.next_block(skip=1).block for _ in range(1)] + [fork.next_block().block for _ in range(2)]
    statuses = [node.receive_block(b).status for b in branch]
    assert "reorganised" in statuses and node.head == fork.state.head
    assert first.hash in node.mempool and second.hash in node.mempool
    # No longer in the chain, so gossip of them is not dropped as "already included".
    assert not node.recently_included(first.hash) and not node.recently_included(second.hash)
    node.close()


def test_a_reorganisation_the_store_refuses_to_commit_leaves_the_node_where_it_was(tmp_path, monkeypatch):
    """A full disk in the middle of a two-block reorganisation: the state is put back exactly,
    the reverted blocks re-applied oldest first, and the node goes on from its old head."""
    main = Sim(genesis(), PRODUCERS)
    fork = copy.deepcopy(main)
    node = follower(tmp_path)
    alice = Wallet(ALICE, main)
    node.receive_block(main.next_block([alice.send(BOB, RUFF)]).block)
    node.receive_block(main.next_block([alice.send(BOB, RUFF)]).block)
    before = node.state.digest(), node.head
    branch = [fork.next_block(skip=1).block] + [fork.next_block().block for _ in range(2)]

    def full_disk(*args, **kw):
        raise OSError("database or disk is full")

    monkeypatch.setattr(node.store, "move_head", full_disk)
    with pytest.raises(OSError):
        for blk in branch:
            node.receive_block(blk)
    assert (node.state.digest(), node.head) == before
    monkeypatch.undo()
    node.receive_block(main.next_block().block)
    assert node.head == main.state.head and node.state.digest() == main.state.digest()
    node.close()


def test_equal_height_tie_goes_to_the_lower_hash(tmp_path):
    g = genesis()
    main = Sim(g, PRODUCERS)
    node = follower(tmp_path)
    node.receive_block(main.next_block().block)
    fork = copy.deepcopy(main)
    a = main.next_block().block
    b = fork.next_block(skip=1).block
    node.receive_block(a)
    status = node.receive_block(b).status
    winner = min(a, b, key=lambda blk: blk.hash)
    assert node.head.hash == winner.hash
    assert status == ("reorganised" if winner is b else "side")


def test_reorganisation_never_crosses_the_last_irreversible_block(tmp_path):
    g = genesis()
    main = Sim(g, PRODUCERS)
    node = follower(tmp_path)
    early = copy.deepcopy(main)
    for _ in range(4):
        node.receive_block(main.next_block().block)
    # Blocks 2, 3 and 4 were made by 3 of the 4 producers (> 2/3) on top of block 1.
    assert node.lib == 1
    # A branch forking at genesis (below the LIB) is refused however long it is.
    branch = [early.next_block(skip=1).block]
    for _ in range(6):
        branch.append(early.next_block().block)
    for blk in branch[:-1]:
        try:
            node.receive_block(blk)
        except BlockRejected:
            pass
    with pytest.raises(BlockRejected, match="irreversible"):
        node.receive_block(branch[-1])
    assert node.head == main.state.head and node.state.digest() == main.state.digest()


def test_a_branch_with_an_invalid_block_leaves_the_node_where_it_was(tmp_path):
    g = genesis()
    main = Sim(g, PRODUCERS)
    node = follower(tmp_path)
    node.receive_block(main.next_block().block)
    fork = copy.deepcopy(main)
    node.receive_block(main.next_block().block)
    good = fork.next_block(skip=1).block
    node.receive_block(good)
    slot = fork.state.head.slot + 1
    owner = fork.keys[fork.owner(slot)]
    bad_header = Header(**{**fork.next_block().block.header.body(), "state_hash": bytes(32)}).signed(owner, g.hash)
    before = node.state.digest(), node.head
    with pytest.raises(BlockRejected, match="state hash"):
        node.receive_block(Block(bad_header, ()))
    assert (node.state.digest(), node.head) == before
    node.close()
    assert (follower(tmp_path).state.digest(), follower(tmp_path).head) == before


def test_a_side_block_for_a_slot_its_producer_does_not_own_is_not_kept(tmp_path):
    main = Sim(genesis(), PRODUCERS)
    node = follower(tmp_path)
    node.receive_block(main.next_block().block)
    fork = copy.deepcopy(main)
    node.receive_block(main.next_block().block)
    node.receive_block(main.next_block().block)
    # A sibling of block 2, correctly signed, but by a producer that does not own its slot.
    honest = fork.next_block(skip=1).block.header
    intruder = next(k for k in PRODUCERS if k.public_key != honest.producer)
    stolen = Block(Header(**{**honest.body(), "producer": intruder.public_key}).signed(intruder, main.genesis.hash), ())
    with pytest.raises(BlockRejected, match="belongs to"):
        node.receive_block(stolen)
    early = Block(Header(**{**honest.body(), "slot": 1, "timestamp": dpos.slot_time(1, GENESIS_TIME, node.constants)})
                  .signed(fork.keys[honest.producer], main.genesis.hash), ())
    with pytest.raises(BlockRejected, match="not after its parent"):
        node.receive_block(early)
    assert not node.store.has_block(stolen.hash) and not node.store.has_block(early.hash)
    assert node.receive_block(Block(honest, ())).status == "side"  # the rightful owner's is kept
    node.close()


def test_unknown_parent_is_refused(tmp_path):
    main = Sim(genesis(), PRODUCERS)
    main.next_block()
    node = follower(tmp_path)
    with pytest.raises(BlockRejected, match="unknown parent"):
        node.receive_block(main.next_block().block)


def test_producer_waits_for_its_own_slot(tmp_path):
    g = genesis()
    nodes = [ChainNode(tmp_path / f"n{i}", g, k) for i, k in enumerate(PRODUCERS)]
    order = dpos.schedule_after(nodes[0].state)
    t = GENESIS_TIME + 500
    made = [n.produce(t) for n in nodes]
    assert sum(b is not None for b in made) == 1
    maker = next(n for n, b in zip(nodes, made) if b is not None)
    assert maker.key.public_key == order[1 % len(order)]


def test_headers_are_read_without_decoding_the_block_and_old_stores_still_answer(tmp_path):
    main = Sim(genesis(), PRODUCERS)
    node = follower(tmp_path)
    blocks = [main.next_block([Wallet(ALICE, main).send(BOB, RUFF)] if i == 0 else []).block for i in range(3)]
    for blk in blocks:
        node.receive_block(blk)
    assert [node.store.canonical_header(i + 1) for i in range(3)] == [b.header for b in blocks]
    stored = node.store.conn.execute("SELECT count(*) FROM headers").fetchone()[0]
    assert stored == 3
    # A store written before the headers table existed has no rows there: the block answers.
    with node.store.transaction() as conn:
        conn.execute("DELETE FROM headers")
    assert node.store.header(blocks[0].hash) == blocks[0].header
    assert node.store.canonical_header(99) is None and node.store.header(b"\x00" * 32) is None
    node.close()


# --- a block that trips a bug ---------------------------------------------------------------------


def test_a_block_that_trips_a_bug_on_the_head_is_refused_as_invalid_and_logged_once(tmp_path, monkeypatch, caplog):
    main = Sim(genesis(), PRODUCERS)
    node = follower(tmp_path)
    node.receive_block(main.next_block().block)
    before = node.state.digest(), node.head
    bad = copy.deepcopy(main).next_block([Wallet(ALICE, main).send(BOB, RUFF)]).block
    monkeypatch.setattr(transition, "_epilogue", _raising_for(transition._epilogue, {bad.hash}))
    for _ in range(2):  # the same block from two peers
        with pytest.raises(BlockRejected, match="ZeroDivisionError.*refused as invalid"):
            node.receive_block(bad)
        assert (node.state.digest(), node.head) == before and not node.store.has_block(bad.hash)
    logged = [r for r in caplog.records if "could not be applied" in r.getMessage()]
    assert len(logged) == 1 and logged[0].exc_info is not None  # once, with the traceback
    monkeypatch.undo()
    assert node.receive_block(main.next_block().block).status == "applied"  # and the node goes on
    assert node.head == main.state.head and node.state.digest() == main.state.digest()
    node.close()


def _raising_for(original, blocks: set[bytes]):
    """``_epilogue`` raising an unexpected error (not a rejection) for the given blocks, after
    their transactions changed the state: a stand-in for a bug that a crafted block trips."""
    def epilogue(state, h, fees, rewarded):
        original(state, h, fees, rewarded)
        if h.hash in blocks:
            raise ZeroDivisionError("a bug this block trips")
    return epilogue


def test_a_branch_block_that_trips_a_bug_leaves_the_node_on_its_old_branch(tmp_path, monkeypatch):
    """Before, ``_reorganise`` put the old branch back only on ``BlockRejected``: anything else
    left the node's state on half the new branch while its store stayed on the old one."""
    main = Sim(genesis(), PRODUCERS)
    fork = copy.deepcopy(main)
    node = follower(tmp_path)
    node.receive_block(main.next_block([Wallet(ALICE, main).send(BOB, RUFF)]).block)
    for _ in range(2):
        node.receive_block(main.next_block().block)
    before = node.state.digest(), node.head
    branch = [fork.next_block(skip=1).block] + [fork.next_block().block for _ in range(3)]
    monkeypatch.setattr(transition, "_epilogue", _raising_for(transition._epilogue, {branch[1].hash}))
    statuses = []
    with pytest.raises(BlockRejected, match="ZeroDivisionError"):
        for blk in branch:  # the switch (at the tie or past it) applies branch block 1, then trips on 2
            statuses.append(node.receive_block(blk).status)
    assert set(statuses) == {"side"}
    assert (node.state.digest(), node.head) == before and node.store.head() == before[1]
    monkeypatch.undo()
    node.receive_block(main.next_block().block)
    assert node.head == main.state.head and node.state.digest() == main.state.digest()
    node.close()
    reopened = follower(tmp_path)
    assert (reopened.state.digest(), reopened.head) == (main.state.digest(), main.state.head)


def test_a_failure_while_producing_leaves_the_state_where_it_was(tmp_path, monkeypatch):
    """``build_block`` commits the journal before it signs: a failure after that (here the signing
    itself) must put the state back, or the node's state holds a block its head and store lack."""
    node = single(tmp_path)
    node.submit(Wallet(ALICE, node.state).send(BOB, RUFF).raw, NOW)
    before = node.state.digest(), node.head

    def broken(self, key, genesis_hash):
        raise OSError("the key store went away")

    monkeypatch.setattr(Header, "signed", broken)
    with pytest.raises(OSError):
        node.produce(GENESIS_TIME + 500)
    assert (node.state.digest(), node.head) == before and node.store.head() == before[1]
    monkeypatch.undo()
    block = node.produce(GENESIS_TIME + 500)
    assert block is not None and len(block.txs) == 1 and node.state.balance(addr(BOB)) == 101 * RUFF
    node.close()

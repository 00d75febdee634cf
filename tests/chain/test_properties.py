"""Properties over random transaction sequences (bounded example counts: the suite shares 2 cores)."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hub.chain.protocol.constants import RUFF
from hub.chain.protocol.errors import TxRejected
from hub.chain.protocol.rules import REWARDED_TYPES, BlockContext, apply_tx
from hub.chain.protocol.transition import apply_block, signature_verifier
from hub.chain.protocol.tx import Transaction

from tests.chain.chainkit import CHAIN, Sim, Wallet, addr, key, make_genesis

PRODUCERS = [key(f"producer{i}") for i in range(3)]
USERS = [key(f"user{i}") for i in range(4)]
START = {u: (i + 1) * 50 * RUFF for i, u in enumerate(USERS)}

op = st.tuples(
    st.sampled_from(["transfer", "transfer", "transfer", "anchor", "register", "vote", "bad_sig", "bad_nonce", "expired"]),
    st.integers(0, len(USERS) - 1),
    st.integers(0, len(USERS) - 1),
    st.integers(1, 120 * RUFF),
    st.integers(0, 3),  # extra fee, in units of 0.01 RUFF
)
blocks = st.lists(st.tuples(st.integers(0, 2), st.lists(op, max_size=8)), min_size=1, max_size=10)


def _tx(wallets: list[Wallet], kind: str, i: int, j: int, amount: int, extra: int) -> Transaction:
    w = wallets[i]
    fee = RUFF // 100 * (1 + extra)
    if kind == "transfer":
        return w.send(USERS[j], amount, fee=fee)
    if kind == "anchor":
        return w.tx("data_anchor", {"hash": bytes([j]) * 32}, fee=fee)
    if kind == "register":
        return w.tx("register_candidate", {"name": f"user{i}"}, fee=11 * RUFF)
    if kind == "vote":
        return w.tx("vote", {"candidates": [addr(USERS[j])]}, fee=fee)
    if kind == "bad_sig":
        good = w.send(USERS[j], 1, fee=fee)
        return Transaction(good.type, good.sender, good.nonce, good.fee, good.valid_until,
                           good.payload, bytes(64))
    if kind == "bad_nonce":
        return w.send(USERS[j], 1, fee=fee, nonce=w.nonce + 5)
    return w.send(USERS[j], 1, fee=fee, valid_until=0)


def _run(plan) -> tuple[Sim, list[tuple[Transaction, TxRejected]]]:
    sim = Sim(make_genesis(PRODUCERS, START, PRODUCERS=3), PRODUCERS + USERS)  # users may get elected
    wallets = [Wallet(u, sim) for u in USERS]
    rejected = []
    for skip, ops in plan:
        txs = []
        for kind, i, j, amount, extra in ops:
            tx = _tx(wallets, kind, i, j, amount, extra)
            txs.append(tx)
        applied = sim.next_block(txs, skip=skip, strict=False)
        included = {t.hash for t in applied.txs}
        for tx in txs:
            if tx.hash not in included and tx.sender_address in {addr(u) for u in USERS}:
                rejected.append(tx)
        # Keep wallets' nonces in step with what the chain accepted.
        for w in wallets:
            w.nonce = sim.state.nonce(addr(w.key))
    return sim, rejected


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(blocks)
def test_supply_changes_only_by_block_rewards(plan):
    sim, _ = _run(plan)
    state = sim.state
    total = sum(bal for bal, _ in state.ns["acct"].values())
    rewarded = sum(1 for b in sim.blocks if any(Transaction.from_bytes(t).type in REWARDED_TYPES for t in b.txs))
    assert not any(Transaction.from_bytes(t).type == "data_anchor" for b in sim.blocks for t in b.txs)
    assert state.meta("minted") == rewarded * state.constants.BLOCK_REWARD
    assert total == state.meta("supply") == sum(START.values()) + state.meta("minted")


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(blocks)
def test_two_replays_of_the_same_blocks_agree(plan):
    sim, _ = _run(plan)
    replicas = [make_genesis(PRODUCERS, START, PRODUCERS=3).state() for _ in range(2)]
    for state in replicas:
        for block in sim.blocks:
            apply_block(state, block)
    a, b = replicas
    assert a.head == b.head == sim.state.head  # the head carries the chained state hash
    assert a.digest() == b.digest() == sim.state.digest()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(op, min_size=1, max_size=25))
def test_every_invalid_transaction_is_rejected_with_a_reason_and_changes_nothing(ops):
    state = make_genesis(PRODUCERS, START, PRODUCERS=3).state()
    wallets = [Wallet(u, state) for u in USERS]
    ctx = BlockContext(1, 2_000_000, 1, frozenset(addr(k) for k in PRODUCERS))
    verify = signature_verifier(state.network)
    state.begin()
    for kind, i, j, amount, extra in ops:
        tx = _tx(wallets, kind, i, j, amount, extra)
        before = state.digest()
        try:
            apply_tx(state, tx, ctx, verify)
        except TxRejected as exc:
            assert exc.reason and str(exc)
            assert state.digest() == before
            wallets[i].nonce = state.nonce(addr(USERS[i]))
        else:
            assert kind not in ("bad_sig", "bad_nonce", "expired", "anchor")
    state.commit()

"""The device transactions' rules (``hub/chain/protocol/devices.py``): each acceptance, each
refusal with its reason, and what a refusal leaves behind (nothing)."""

from __future__ import annotations

import pytest

from hub.chain.protocol import statetree
from hub.chain.protocol.constants import MAX_STATEMENT_AHEAD, RUFF
from hub.chain.protocol.errors import Reason, TxRejected
from hub.chain.protocol.rules import BlockContext, apply_tx
from hub.chain.protocol.transition import signature_verifier
from hub.crypto.address import address_of
from hub.crypto.signing import Network
from hub.crypto.statements import Bind, Handover

from tests.chain.chainkit import (GENESIS_TIME, Wallet, addr, bind, command, grant, handover, key, log_batch, make_genesis, report,
                                  reset, revoke, sale, signed)

PRODUCERS = [key(f"producer{i}") for i in range(4)]
ALICE, BOB, CAROL = key("alice"), key("bob"), key("carol")  # people: controllers, buyers, renters
PLUG = key("device-plug")  # a device's key (the label's, or the one it holds)
DEV = PLUG.public_key
NOW = 2_000_000  # the block's time


@pytest.fixture
def state():
    return make_genesis(PRODUCERS, {ALICE: 1000 * RUFF, BOB: 10 * RUFF, CAROL: 100 * RUFF}).state()


def ctx(height=1, now=NOW):
    return BlockContext(height, now, 1, frozenset(addr(k) for k in PRODUCERS))


def apply(state, tx, *, height=1, now=NOW):
    state.begin()
    try:
        apply_tx(state, tx, ctx(height, now), signature_verifier(state.network))
    except BaseException:
        state.rollback()
        raise
    return state.commit()[0]


def rejected(state, tx, reason: Reason, *, now=NOW) -> TxRejected:
    before, root = state.digest(), state.state_root()
    state.begin()
    with pytest.raises(TxRejected) as info:
        apply_tx(state, tx, ctx(now=now), signature_verifier(state.network))
    changes, _ = state.commit()
    assert info.value.reason is reason, str(info.value)
    assert changes == [] and state.digest() == before and state.state_root() == root, "a refusal changes nothing"
    return info.value


class W(Wallet):
    """A wallet that takes its next nonce from the state, so a refused transaction needs no bookkeeping."""

    def __init__(self, k, state):
        super().__init__(k, state)
        self.state = state

    def tx(self, tx_type, payload, **kw):
        kw.setdefault("nonce", self.state.nonce(addr(self.key)) + 1)
        return super().tx(tx_type, payload, **kw)


def bound(state, controller=ALICE, time=NOW - 1000):
    """PLUG bound to ``controller`` on chain (by a bind sent from CAROL: anyone may publish one)."""
    apply(state, W(CAROL, state).tx("bind_device", bind(PLUG, controller.public_key, time, state)))
    return state.get("dev", DEV)


def supply(state) -> int:
    return sum(bal for bal, _ in state.ns["acct"].values())


# --- bind_device: Bind, BindProof, Reset ----------------------------------------------------------

def test_a_device_signed_binding_records_its_controller_on_chain(state):
    assert bound(state) == (ALICE.public_key, 1, NOW - 1000, 0)
    other = key("other-plug")  # the strong mode's proof, signed by a device that holds its key
    apply(state, W(BOB, state).tx("bind_device", bind(other, BOB.public_key, NOW, state, proof=True)))
    assert state.get("dev", other.public_key) == (BOB.public_key, 1, NOW, 0)


def test_a_binding_not_signed_by_the_device_key_is_refused(state):
    w = W(CAROL, state)
    forged = {"statement": signed(Bind(DEV, CAROL.public_key, NOW), CAROL, state)}  # names PLUG, signed by CAROL
    assert "device key" in rejected(state, w.tx("bind_device", forged), Reason.BAD_STATEMENT_SIGNATURE).detail
    elsewhere = Network(state.chain_id, bytes(32))  # the same chain id, another genesis
    rejected(state, w.tx("bind_device", bind(PLUG, CAROL.public_key, NOW, elsewhere)), Reason.BAD_STATEMENT_SIGNATURE)


def test_a_later_binding_supersedes_an_older_one_never_the_reverse(state):
    w = W(CAROL, state)
    bound(state, ALICE, time=NOW - 1000)
    old = bind(PLUG, BOB.public_key, NOW - 1000, state)  # same time: not later
    assert "only a later one" in rejected(state, w.tx("bind_device", old), Reason.STALE_BINDING).detail
    # whoever holds the printed key can re-bind with a later time: the whitepaper's weakness
    apply(state, w.tx("bind_device", bind(PLUG, BOB.public_key, NOW - 500, state)))
    assert state.get("dev", DEV) == (BOB.public_key, 2, NOW - 500, 0)
    rejected(state, w.tx("bind_device", bind(PLUG, ALICE.public_key, NOW - 1000, state)), Reason.STALE_BINDING)


def test_a_binding_dated_far_in_the_future_is_refused_so_a_reset_can_always_supersede_it(state):
    w = W(CAROL, state)
    late = NOW + MAX_STATEMENT_AHEAD + 1
    rejected(state, w.tx("bind_device", bind(PLUG, CAROL.public_key, late, state)), Reason.FUTURE_TIME)
    apply(state, w.tx("bind_device", bind(PLUG, CAROL.public_key, NOW + MAX_STATEMENT_AHEAD, state)))  # skew allowed


def test_a_factory_reset_unbinds_and_an_old_binding_cannot_be_replayed_after_it(state):
    w = W(BOB, state)
    before = bound(state, ALICE, time=NOW - 1000)
    rejected(state, w.tx("bind_device", reset(PLUG, NOW - 1000, state)), Reason.STALE_BINDING)
    apply(state, w.tx("bind_device", reset(PLUG, NOW - 10, state)))
    assert state.get("dev", DEV) == (b"", before[1] + 1, NOW - 10, 0)
    # the binding from before the reset, replayed: refused, though the device has no controller now
    replay = W(ALICE, state).tx("bind_device", bind(PLUG, ALICE.public_key, NOW - 1000, state))
    rejected(state, replay, Reason.STALE_BINDING)
    apply(state, w.tx("bind_device", bind(PLUG, BOB.public_key, NOW, state)))  # a new owner binds it
    assert state.get("dev", DEV) == (BOB.public_key, before[1] + 2, NOW, 0)


# --- bind_device: Handover and Sale ----------------------------------------------------------------

def test_a_handover_signed_by_the_controller_moves_control_once(state):
    _, seq, _, _ = bound(state, ALICE)
    w = W(BOB, state)  # the new owner publishes it (and pays the fee)
    give = handover(ALICE, DEV, BOB.public_key, seq, state)
    apply(state, w.tx("bind_device", give), now=NOW + 5)
    assert state.get("dev", DEV) == (BOB.public_key, seq + 1, NOW + 5, 0)
    rejected(state, w.tx("bind_device", give), Reason.NOT_CONTROLLER)  # ALICE no longer controls it
    apply(state, w.tx("bind_device", handover(BOB, DEV, ALICE.public_key, seq + 1, state)))  # given back
    # ALICE controls it again, but her first hand-over was for binding `seq`: replayed, it is refused
    assert "used once" in rejected(state, w.tx("bind_device", give), Reason.WRONG_SEQ).detail
    # the seller's old Bind statement cannot take the device back: the hand-over dated the binding
    rejected(state, w.tx("bind_device", bind(PLUG, ALICE.public_key, NOW, state)), Reason.STALE_BINDING)


def test_a_handover_needs_the_current_controller_and_its_signature(state):
    w = W(CAROL, state)
    rejected(state, w.tx("bind_device", handover(ALICE, DEV, CAROL.public_key, 0, state)), Reason.UNBOUND)
    _, seq, _, _ = bound(state, ALICE)
    rejected(state, w.tx("bind_device", handover(CAROL, DEV, CAROL.public_key, seq, state)), Reason.NOT_CONTROLLER)
    forged = {"statement": signed(Handover(DEV, ALICE.public_key, CAROL.public_key, seq), CAROL, state)}
    rejected(state, w.tx("bind_device", forged), Reason.BAD_STATEMENT_SIGNATURE)
    rejected(state, w.tx("bind_device", handover(ALICE, DEV, CAROL.public_key, seq + 1, state)), Reason.WRONG_SEQ)


def test_a_sale_moves_payment_and_control_in_one_transaction(state):
    _, seq, _, _ = bound(state, ALICE)
    offer = sale(ALICE, DEV, 40 * RUFF, seq, NOW + 60_000, state)
    buyer = W(CAROL, state)
    carol, alice, total = state.balance(addr(CAROL)), state.balance(addr(ALICE)), supply(state)
    tx = buyer.tx("bind_device", offer, fee=RUFF // 100)
    apply(state, tx)
    assert state.get("dev", DEV) == (CAROL.public_key, seq + 1, NOW, 0)
    assert state.balance(addr(CAROL)) == carol - 40 * RUFF - RUFF // 100
    assert state.balance(addr(ALICE)) == alice + 40 * RUFF
    assert supply(state) == total - RUFF // 100  # only the fee left the accounts (the producer's, in a block)
    rejected(state, W(ALICE, state).tx("bind_device", offer), Reason.NOT_CONTROLLER)  # sold once: ALICE sold it


def test_a_buyer_who_cannot_pay_gets_neither_the_device_nor_a_debit(state):
    _, seq, _, _ = bound(state, ALICE)
    offer = sale(ALICE, DEV, 10 * RUFF, seq, NOW + 60_000, state)  # BOB holds exactly 10 RUFF: not + fee
    info = rejected(state, W(BOB, state).tx("bind_device", offer), Reason.INSUFFICIENT_BALANCE)
    assert str(10 * RUFF + RUFF // 100) in info.detail
    assert state.get("dev", DEV)[0] == ALICE.public_key


def test_a_sale_is_refused_when_expired_for_another_buyer_or_not_the_controllers(state):
    _, seq, _, _ = bound(state, ALICE)
    w = W(CAROL, state)
    rejected(state, w.tx("bind_device", sale(ALICE, DEV, RUFF, seq, NOW - 1, state)), Reason.OFFER_EXPIRED)
    for_bob = sale(ALICE, DEV, RUFF, seq, NOW, state, buyer=BOB.public_key)
    rejected(state, w.tx("bind_device", for_bob), Reason.WRONG_BUYER)
    rejected(state, w.tx("bind_device", sale(CAROL, DEV, 0, seq, NOW, state)), Reason.NOT_CONTROLLER)
    apply(state, W(BOB, state).tx("bind_device", for_bob))  # the named buyer may; expires == now is in time
    assert state.get("dev", DEV)[0] == BOB.public_key


# --- bind_device: Revoke -------------------------------------------------------------------------

def test_a_revocation_raises_the_epoch_only(state):
    controller, seq, time, _ = bound(state, ALICE)
    w = W(ALICE, state)
    apply(state, w.tx("bind_device", revoke(ALICE, DEV, 3, state)))
    assert state.get("dev", DEV) == (controller, seq, time, 3)
    rejected(state, w.tx("bind_device", revoke(ALICE, DEV, 3, state)), Reason.STALE_EPOCH)
    rejected(state, w.tx("bind_device", revoke(BOB, DEV, 9, state)), Reason.NOT_CONTROLLER)
    # the epoch survives a change of owner: a device never sees it fall
    apply(state, w.tx("bind_device", handover(ALICE, DEV, BOB.public_key, seq, state)))
    assert state.get("dev", DEV)[3] == 3


def test_statements_of_other_kinds_are_bad_payloads_naming_the_field(state):
    w = W(ALICE, state)
    wrong_kind = {"statement": grant(ALICE, DEV, BOB.public_key, state)}
    info = rejected(state, w.tx("bind_device", wrong_kind), Reason.BAD_PAYLOAD)
    assert "statement" in info.detail and "grant" in info.detail
    broken = bind(PLUG, ALICE.public_key, NOW, state)
    broken["statement"]["body"]["time"] = -1
    assert "bind.time" in rejected(state, w.tx("bind_device", broken), Reason.BAD_PAYLOAD).detail


# --- control_command ---------------------------------------------------------------------------

def test_the_controllers_command_opens_a_command_on_chain(state):
    bound(state, ALICE)
    tx = W(ALICE, state).tx("control_command", command(ALICE, DEV, state, counter=7))
    apply(state, tx, height=4)
    assert state.get("ctl", tx.hash) == (DEV, 4)


def test_a_command_that_is_forged_unbound_or_for_another_chain_is_refused(state):
    w = W(BOB, state)
    rejected(state, w.tx("control_command", command(ALICE, DEV, state)), Reason.UNBOUND)
    bound(state, ALICE)
    rejected(state, w.tx("control_command", command(ALICE, DEV, state, chain="elsewhere")), Reason.WRONG_CHAIN)
    forged = command(ALICE, DEV, state)
    forged["command"]["sig"] = bytes(64)
    rejected(state, w.tx("control_command", forged), Reason.BAD_STATEMENT_SIGNATURE)
    rejected(state, w.tx("control_command", command(BOB, DEV, state)), Reason.NOT_CONTROLLER)


def test_a_grantee_commands_within_its_grant_only(state):
    bound(state, ALICE)
    w = W(BOB, state)
    bob = BOB.public_key

    def attempt(g, name="turn_on"):
        return w.tx("control_command", command(BOB, DEV, state, name=name, grant=g))

    rent = grant(ALICE, DEV, bob, state, commands=["relay.turn_on"], not_before=NOW - 10, not_after=NOW + 10)
    tx = attempt(rent)
    apply(state, tx)
    assert state.get("ctl", tx.hash) == (DEV, 1)
    assert "does not include relay.turn_off" in rejected(state, attempt(rent, "turn_off"), Reason.NOT_GRANTED).detail
    over = grant(ALICE, DEV, bob, state, commands=["relay.turn_on"], not_before=0, not_after=NOW - 1)
    assert "valid from" in rejected(state, attempt(over), Reason.NOT_GRANTED).detail
    rejected(state, attempt(grant(ALICE, DEV, CAROL.public_key, state)), Reason.NOT_GRANTED)  # to someone else
    rejected(state, attempt(grant(ALICE, key("other").public_key, bob, state)), Reason.BAD_STATEMENT)
    rejected(state, attempt(grant(CAROL, DEV, bob, state)), Reason.NOT_GRANTED)  # not made by the controller
    forged = grant(ALICE, DEV, bob, state)
    forged["sig"] = grant(ALICE, DEV, bob, state, ref="other")["sig"]
    rejected(state, attempt(forged), Reason.BAD_STATEMENT_SIGNATURE)


def test_a_revocation_or_a_new_owner_voids_earlier_grants(state):
    _, seq, _, _ = bound(state, ALICE)
    share = grant(ALICE, DEV, BOB.public_key, state, epoch=0)
    w = W(BOB, state)
    apply(state, w.tx("control_command", command(BOB, DEV, state, grant=share)))
    apply(state, W(ALICE, state).tx("bind_device", revoke(ALICE, DEV, 1, state)))
    rejected(state, w.tx("control_command", command(BOB, DEV, state, counter=2, grant=share)), Reason.GRANT_REVOKED)
    apply(state, w.tx("control_command", command(BOB, DEV, state, counter=2,
                                                   grant=grant(ALICE, DEV, BOB.public_key, state, epoch=1))))
    apply(state, W(ALICE, state).tx("bind_device", handover(ALICE, DEV, CAROL.public_key, seq, state)))
    again = command(BOB, DEV, state, counter=3, grant=grant(ALICE, DEV, BOB.public_key, state, epoch=1))
    rejected(state, w.tx("control_command", again), Reason.NOT_GRANTED)


# --- state_change --------------------------------------------------------------------------------

def test_a_commands_outcome_is_reported_once(state):
    bound(state, ALICE)
    cmd = W(ALICE, state).tx("control_command", command(ALICE, DEV, state))
    apply(state, cmd, height=2)
    hub = W(ALICE, state)  # the controller's hub reports
    apply(state, hub.tx("state_change", report(DEV, cmd.hash, ok=False, reason="stale", value=True)), height=3)
    assert state.get("ctl", cmd.hash) is None
    assert state.get("done", cmd.hash) == (False, "stale", 3)
    info = rejected(state, hub.tx("state_change", report(DEV, cmd.hash)), Reason.ALREADY_REPORTED)
    assert "height 3" in info.detail
    rejected(state, hub.tx("state_change", report(DEV, bytes(32))), Reason.UNKNOWN_COMMAND)


def test_only_the_device_or_its_controller_reports_and_only_its_own_commands(state):
    bound(state, ALICE)
    cmd = W(ALICE, state).tx("control_command", command(ALICE, DEV, state))
    apply(state, cmd)
    rejected(state, W(BOB, state).tx("state_change", report(DEV, cmd.hash)), Reason.NOT_CONTROLLER)
    other = key("other-plug")
    funds = W(ALICE, state)
    apply(state, funds.send(address_of(other.public_key), RUFF))
    apply(state, funds.send(address_of(DEV), RUFF))
    device = W(other, state)  # a device key may report its own state, not another device's command
    rejected(state, device.tx("state_change", report(other.public_key, cmd.hash)), Reason.UNKNOWN_COMMAND)
    w = W(PLUG, state)
    changes = apply(state, w.tx("state_change", report(DEV, value={"power": 12.5})), height=2)  # no command: a record
    assert {c[0] for c in changes} == {"acct"}
    apply(state, w.tx("state_change", report(DEV, cmd.hash)), height=3)  # the device key closes its command
    assert state.get("done", cmd.hash) == (True, "", 3)


def test_a_reported_value_is_bounded(state):
    bound(state, ALICE)
    w = W(ALICE, state)
    for value, why in ((float("inf"), "finite"), ("x" * 300, "bytes encoded"), ([[[[[[1]]]]]], "deeper")):
        assert why in rejected(state, w.tx("state_change", report(DEV, value=value)), Reason.BAD_PAYLOAD).detail


# --- command_log ---------------------------------------------------------------------------------

def test_command_log_batches_follow_each_other_without_gap_or_overlap(state):
    hub = W(ALICE, state)
    keeper = addr(ALICE)
    rejected(state, hub.tx("command_log", log_batch(5, 10)), Reason.LOG_GAP)
    apply(state, hub.tx("command_log", log_batch(0, 10, first_time=1, last_time=9)), height=2)
    apply(state, hub.tx("command_log", log_batch(10, 5, root=b"\x02" * 32)), height=3)
    assert state.get("clog", keeper) == (15, 2)
    assert state.get("anchor", keeper + (0).to_bytes(8, "big")) == (b"\x01" * 32, 10, 1, 9, 2)
    assert state.get("anchor", keeper + (10).to_bytes(8, "big")) == (b"\x02" * 32, 5, 0, 0, 3)
    info = rejected(state, hub.tx("command_log", log_batch(10, 5)), Reason.LOG_OVERLAP)  # the same batch again
    assert "up to 14" in info.detail
    assert "14 to 15" not in rejected(state, hub.tx("command_log", log_batch(16, 1)), Reason.LOG_GAP).detail
    apply(state, W(BOB, state).tx("command_log", log_batch(0, 1)))  # each keeper has its own log
    assert state.get("clog", addr(BOB)) == (1, 1)


def test_device_state_is_proved_by_the_state_root(state):
    bound(state, ALICE)
    root = state.state_root()
    assert statetree.verify(root, "dev", DEV, state.tree.prove("dev", DEV)) == (True, (ALICE.public_key, 1, NOW - 1000, 0))
    assert statetree.verify(root, "dev", b"\x09" * 32, state.tree.prove("dev", b"\x09" * 32)) == (False, None)


# --- blocks and admission ------------------------------------------------------------------------

def test_a_block_with_a_device_transaction_mints_the_block_reward():
    from tests.chain.chainkit import Sim

    genesis = make_genesis(PRODUCERS, {ALICE: 1000 * RUFF})
    sim = Sim(genesis, PRODUCERS)
    sim.next_block([W(ALICE, sim.state).tx("transfer", {"to": addr(BOB), "amount": RUFF})])
    assert sim.state.meta("minted") == 0
    sim.next_block([W(ALICE, sim.state).tx("bind_device", bind(PLUG, ALICE.public_key, GENESIS_TIME, sim))])
    reward = sim.state.constants.BLOCK_REWARD
    assert sim.state.meta("minted") == reward and sim.state.meta("supply") == 1000 * RUFF + reward
    assert sim.state.get("dev", DEV)[0] == ALICE.public_key


def test_the_mempool_runs_the_device_rules_and_counts_a_sales_price_as_spent():
    from hub.chain.node.mempool import Mempool

    genesis = make_genesis(PRODUCERS, {ALICE: 1000 * RUFF, BOB: 10 * RUFF})
    state = genesis.state()
    state.begin()
    state.set("dev", DEV, (ALICE.public_key, 1, GENESIS_TIME, 0))
    state.commit()
    pool, now = Mempool(genesis.network), GENESIS_TIME + 1000
    bob = Wallet(BOB, genesis)
    with pytest.raises(TxRejected) as info:  # the type's rules at admission
        pool.add(bob.tx("bind_device", handover(ALICE, DEV, BOB.public_key, 7, genesis)), state, now)
    assert info.value.reason is Reason.WRONG_SEQ
    bob.nonce = 0
    pool.add(bob.send(ALICE, 5 * RUFF, fee=RUFF // 100), state, now)
    offer = sale(ALICE, DEV, 5 * RUFF, 1, now + 60_000, genesis)  # 5 + 5 + fees: more than BOB's 10
    with pytest.raises(TxRejected) as info:
        pool.add(bob.tx("bind_device", offer, fee=RUFF // 100), state, now)
    assert info.value.reason is Reason.INSUFFICIENT_BALANCE and len(pool) == 1
    cheap = sale(ALICE, DEV, 4 * RUFF, 1, now + 60_000, genesis)
    bob.nonce = 1
    pool.add(bob.tx("bind_device", cheap, fee=RUFF // 100), state, now)
    assert pool.spend[addr(BOB)] == 9 * RUFF + 2 * (RUFF // 100)

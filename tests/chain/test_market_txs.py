"""The market's rules (``hub/chain/protocol/market.py``): each acceptance, each refusal with its
reason, where the tokens go, and that no token is created or lost on the way."""

from __future__ import annotations

import pytest

from hub.chain.protocol.constants import RUFF
from hub.chain.protocol.errors import Reason, TxRejected
from hub.chain.protocol.market import escrow_total
from hub.chain.protocol.rules import BlockContext, apply_tx, spend
from hub.chain.protocol.transition import signature_verifier
from hub.crypto.address import address_of

from tests.chain.chainkit import GENESIS_TIME, Wallet, addr, bind, key, make_genesis
from tests.chain.marketkit import cheque, first_channel, metered, offer, prepaid, returned

PRODUCERS = [key(f"producer{i}") for i in range(4)]
OWNER, RENTER, CAROL, WATCHER = key("owner"), key("renter"), key("carol"), key("watcher")
PLUG, PILE = key("device-plug"), key("device-pile")
NOW = GENESIS_TIME + 1_000_000
HOUR = 3_600_000
FEE = RUFF // 100


@pytest.fixture
def state():
    s = make_genesis(PRODUCERS, {OWNER: 1000 * RUFF, RENTER: 100 * RUFF, CAROL: 100 * RUFF, WATCHER: RUFF}).state()
    for device in (PLUG, PILE):
        apply(s, W(CAROL, s).tx("bind_device", bind(device, OWNER.public_key, NOW - 10_000, s)), now=NOW - 5000)
    return s


def ctx(now=NOW, height=1):
    return BlockContext(height, now, 1, frozenset(addr(k) for k in PRODUCERS))


def total(state) -> int:
    return sum(bal for bal, _ in state.ns["acct"].values()) + escrow_total(state)


def rejected(state, tx, reason: Reason, *, now=NOW) -> TxRejected:
    before, root = state.digest(), state.state_root()
    state.begin()
    with pytest.raises(TxRejected) as info:
        apply_tx(state, tx, ctx(now), signature_verifier(state.network))
    changes, _ = state.commit()
    assert info.value.reason is reason, str(info.value)
    assert changes == [] and state.digest() == before and state.state_root() == root, "a refusal changes nothing"
    return info.value


class W(Wallet):
    def __init__(self, k, state):
        super().__init__(k, state)
        self.state = state

    def tx(self, tx_type, payload, **kw):
        kw.setdefault("nonce", self.state.nonce(addr(self.key)) + 1)
        kw.setdefault("fee", FEE)
        kw.setdefault("valid_until", NOW + 20 * HOUR)
        return super().tx(tx_type, payload, **kw)


def balance(state, k) -> int:
    return state.balance(addr(k))


def contract(state, terms, device=PLUG, sender=OWNER, now=NOW) -> bytes:
    return apply(state, W(sender, state).tx("create_contract", offer(device.public_key, terms)), now=now)


def call(state, contract_id, deposit, renter=RENTER, now=NOW) -> bytes:
    return apply(state, W(renter, state).tx("call", {"contract": contract_id, "deposit": deposit}), now=now)


# Fees are credited to the producer by the block's epilogue, not inside apply_tx: counted back here.
def apply(state, tx, *, now=NOW, height=1):
    before = total(state)
    state.begin()
    try:
        fee = apply_tx(state, tx, ctx(now, height), signature_verifier(state.network))
    except BaseException:
        state.rollback()
        raise
    state.commit()
    assert total(state) + fee == before, "tokens were created or lost"
    return tx.hash


# --- create_contract ----------------------------------------------------------------------------

def test_only_the_controller_of_a_bound_device_creates_a_contract(state):
    rejected(state, W(RENTER, state).tx("create_contract", offer(PLUG.public_key, prepaid())), Reason.NOT_CONTROLLER)
    rejected(state, W(OWNER, state).tx("create_contract", offer(key("nobody").public_key, prepaid())), Reason.UNBOUND)
    cid = contract(state, prepaid())
    device, controller, commands, terms, endpoint, height, time = state.get("contract", cid)
    assert (device, controller, commands, endpoint, time) == (PLUG.public_key, OWNER.public_key,
                                                              ("outlet.turn_off", "outlet.turn_on"), "", NOW)
    assert terms == ("prepaid", 50, 60_000, 0, "", 0, 0, 180_000)


@pytest.mark.parametrize(("terms", "words"), [
    ({"kind": "prepaid", "price": 0, "window": 1000, "max_duration": 1000}, "price"),
    ({"kind": "prepaid", "price": 5, "window": 1000, "max_duration": 999}, "max_duration"),
    ({"kind": "prepaid", "price": 5, "window": 1000, "max_duration": 1000, "rate": 1}, "rate"),
    ({"kind": "metered", "rate": 1, "meter": "", "interval": 0, "max_duration": 1000}, "interval"),
    ({"kind": "metered", "rate": 0, "meter": "energy", "max_duration": 1000}, "rate"),
    ({"kind": "metered", "rate": 1, "meter": "energy", "price": 3, "max_duration": 1000}, "price"),
    ({"kind": "rental", "max_duration": 1000}, "kind"),
])
def test_terms_that_make_no_sense_are_refused_naming_the_term(state, terms, words):
    err = rejected(state, W(OWNER, state).tx("create_contract", offer(PLUG.public_key, terms)), Reason.BAD_PAYLOAD)
    assert words in str(err)


def test_a_sale_of_the_device_ends_the_sellers_offers(state):
    cid = contract(state, prepaid())
    from tests.chain.chainkit import handover
    apply(state, W(OWNER, state).tx("bind_device", handover(OWNER, PLUG.public_key, CAROL.public_key, 1, state)))
    rejected(state, W(RENTER, state).tx("call", {"contract": cid, "deposit": 100}), Reason.CONTRACT_NOT_LIVE)


# --- prepaid ----------------------------------------------------------------------------------

def test_a_prepaid_call_escrows_the_deposit_and_the_return_splits_it(state):
    cid = contract(state, prepaid(price=50, window=60_000, max_duration=180_000))
    before_owner, before_renter = balance(state, OWNER), balance(state, RENTER)
    rejected(state, W(RENTER, state).tx("call", {"contract": cid, "deposit": 49}), Reason.DEPOSIT_TOO_LOW)
    tx = W(RENTER, state).tx("call", {"contract": cid, "deposit": 400})
    assert spend(tx) == FEE + 400  # the mempool counts the deposit against the sender
    call_id = apply(state, tx)
    assert balance(state, RENTER) == before_renter - 400 - FEE
    record = state.get("call", call_id)
    assert record[2] == 400 and record[5] == 3 and record[6] == "open"  # 3 windows: max_duration caps 400 // 50
    ret = returned(OWNER, call_id, cid, PLUG.public_key, 151, state)
    rejected(state, W(OWNER, state).tx("return", ret), Reason.USED_ABOVE_CAP)  # 3 × 50 at most
    rejected(state, W(RENTER, state).tx("return", returned(OWNER, call_id, cid, PLUG.public_key, 10, state)),
             Reason.NOT_CONTROLLER)
    apply(state, W(OWNER, state).tx("return", returned(OWNER, call_id, cid, PLUG.public_key, 100, state)))
    assert balance(state, OWNER) == before_owner + 100 - FEE
    assert balance(state, RENTER) == before_renter - 100 - FEE
    assert state.get("call", call_id)[6:] == ("returned", 100, NOW)
    assert state.get("rev", cid) == (1, 0) and state.get("rev", PLUG.public_key) == (1, 0)
    rejected(state, W(OWNER, state).tx("return", returned(OWNER, call_id, cid, PLUG.public_key, 0, state)),
             Reason.CALL_NOT_OPEN)


def test_a_return_carries_the_controllers_consent_for_this_call(state):
    cid = contract(state, prepaid())
    call_id = call(state, cid, 100)
    other = call(state, cid, 100)
    wrong_call = returned(OWNER, call_id, cid, PLUG.public_key, 0, state)
    wrong_call["consent"] = returned(OWNER, other, cid, PLUG.public_key, 0, state)["consent"]
    rejected(state, W(OWNER, state).tx("return", wrong_call), Reason.CONSENT_MISMATCH)
    forged = returned(OWNER, call_id, cid, PLUG.public_key, 0, state)
    forged["consent"]["sig"] = bytes(64)
    rejected(state, W(OWNER, state).tx("return", forged), Reason.BAD_STATEMENT_SIGNATURE)
    with_cheque = returned(OWNER, call_id, cid, PLUG.public_key, 0, state,
                           cheque_body=cheque(RENTER, b"\1" * 32, cid, call_id, 5, state))
    rejected(state, W(OWNER, state).tx("return", with_cheque), Reason.CHEQUE_MISMATCH)


def test_a_refund_comes_only_after_the_paid_time_and_the_timeout_and_only_to_the_renter(state):
    cid = contract(state, prepaid(price=50, window=60_000, max_duration=180_000))
    before = balance(state, RENTER)
    call_id = call(state, cid, 120)  # 2 windows
    due = NOW + 2 * 60_000 + state.constants.REFUND_TIMEOUT
    err = rejected(state, W(RENTER, state).tx("refund", {"target": call_id}), Reason.REFUND_TOO_EARLY, now=due - 1)
    assert str(due) in str(err)
    rejected(state, W(CAROL, state).tx("refund", {"target": call_id}), Reason.NOT_RENTER, now=due)
    apply(state, W(RENTER, state).tx("refund", {"target": call_id}), now=due)
    assert balance(state, RENTER) == before - 2 * FEE
    assert state.get("call", call_id)[6] == "refunded"
    rejected(state, W(RENTER, state).tx("refund", {"target": call_id}), Reason.CALL_NOT_OPEN, now=due)
    rejected(state, W(OWNER, state).tx("return", returned(OWNER, call_id, cid, PLUG.public_key, 0, state)),
             Reason.CALL_NOT_OPEN)
    rejected(state, W(RENTER, state).tx("refund", {"target": b"\7" * 32}), Reason.UNKNOWN_TARGET)


# --- reviews ----------------------------------------------------------------------------------

def test_a_review_is_counted_once_per_returned_call_within_the_period(state):
    cid = contract(state, prepaid())
    call_id = call(state, cid, 100)
    rejected(state, W(RENTER, state).tx("review", {"call": call_id, "comment": "dead"}), Reason.CALL_NOT_RETURNED)
    apply(state, W(OWNER, state).tx("return", returned(OWNER, call_id, cid, PLUG.public_key, 50, state)))
    rejected(state, W(CAROL, state).tx("review", {"call": call_id}), Reason.NOT_RENTER)
    late = NOW + state.constants.REVIEW_PERIOD + 1
    rejected(state, W(RENTER, state).tx("review", {"call": call_id}, valid_until=late), Reason.REVIEW_PERIOD_OVER,
             now=late)
    apply(state, W(RENTER, state).tx("review", {"call": call_id, "comment": "it tripped"}, valid_until=late),
          now=late - 1)
    assert state.get("rev", cid) == (1, 1) and state.get("rev", PLUG.public_key) == (1, 1)
    rejected(state, W(RENTER, state).tx("review", {"call": call_id}), Reason.ALREADY_REVIEWED)
    rejected(state, W(RENTER, state).tx("review", {"call": b"\3" * 32}), Reason.UNKNOWN_CALL)


# --- metered: channels and cheques ------------------------------------------------------------------

def test_one_channel_per_renter_and_payee_is_topped_up_by_calls_on_any_of_its_contracts(state):
    plug = contract(state, metered(deposit=100))
    pile = contract(state, metered(rate=300, meter="energy", deposit=500), device=PILE)
    rejected(state, W(RENTER, state).tx("call", {"contract": plug, "deposit": 99}), Reason.DEPOSIT_TOO_LOW)
    before = balance(state, RENTER)
    first = call(state, plug, 300)
    second = call(state, pile, 200)  # 500 in the channel: enough for the pile's minimum
    third = call(state, plug, 0)  # nothing more needed
    channel = first_channel(RENTER, OWNER)
    assert [state.get("call", c)[3] for c in (first, second, third)] == [channel] * 3
    assert state.get("chan", channel)[:4] == (RENTER.public_key, OWNER.public_key, 500, 0)
    assert state.get("chanof", address_of(RENTER.public_key) + address_of(OWNER.public_key)) == (channel, 1)
    assert balance(state, RENTER) == before - 500 - 3 * FEE


def test_the_payee_withdraws_what_a_cheque_covers_without_closing_capped_by_the_deposit(state):
    plug = contract(state, metered(deposit=100))
    call_id = call(state, plug, 300)
    channel = first_channel(RENTER, OWNER)
    owner = balance(state, OWNER)
    settle = {"channel": channel, "cheque": cheque(RENTER, channel, plug, call_id, 120, state), "close": False}
    apply(state, W(OWNER, state).tx("settle", settle))
    assert balance(state, OWNER) == owner + 120 - FEE and state.get("chan", channel)[3] == 120
    rejected(state, W(OWNER, state).tx("settle", settle), Reason.CHEQUE_NOT_RISING)  # no second payment
    above = {"channel": channel, "cheque": cheque(RENTER, channel, plug, call_id, 10_000, state), "close": False}
    apply(state, W(OWNER, state).tx("settle", above))
    assert state.get("chan", channel)[3] == 300  # capped by the deposit
    assert balance(state, OWNER) == owner + 300 - 2 * FEE
    rejected(state, W(RENTER, state).tx("settle", {**above, "close": False}), Reason.NOT_PAYEE)


def test_cheques_are_bound_to_their_chain_channel_renter_and_signature(state):
    plug = contract(state, metered(deposit=100))
    call_id = call(state, plug, 300)
    channel = first_channel(RENTER, OWNER)
    cases = [
        (cheque(RENTER, channel, plug, call_id, 50, state, chain="other"), Reason.WRONG_CHAIN),
        (cheque(RENTER, first_channel(RENTER, OWNER, 2), plug, call_id, 50, state), Reason.CHEQUE_MISMATCH),
        (cheque(CAROL, channel, plug, call_id, 50, state), Reason.CHEQUE_MISMATCH),
        (cheque(RENTER, channel, b"\4" * 32, call_id, 50, state), Reason.CHEQUE_MISMATCH),
    ]
    forged = cheque(RENTER, channel, plug, call_id, 50, state)
    forged["sig"] = bytes(64)
    cases.append((forged, Reason.BAD_STATEMENT_SIGNATURE))
    for body, reason in cases:
        rejected(state, W(OWNER, state).tx("settle", {"channel": channel, "cheque": body}), reason)
    rejected(state, W(OWNER, state).tx("settle", {"channel": b"\5" * 32}), Reason.UNKNOWN_CHANNEL)


def test_a_metered_return_pays_the_cheque_and_claims_no_more_than_it_covers(state):
    plug = contract(state, metered(deposit=100))
    call_id = call(state, plug, 300)
    channel = first_channel(RENTER, OWNER)
    owner = balance(state, OWNER)
    rejected(state, W(OWNER, state).tx("return", returned(OWNER, call_id, plug, PLUG.public_key, 10, state)),
             Reason.CHEQUE_MISMATCH)  # a metered return needs the cheque
    latest = cheque(RENTER, channel, plug, call_id, 80, state, call_amount=80)
    rejected(state, W(OWNER, state).tx("return", returned(OWNER, call_id, plug, PLUG.public_key, 81, state,
                                                          cheque_body=latest)), Reason.USED_ABOVE_CAP)
    apply(state, W(OWNER, state).tx("return", returned(OWNER, call_id, plug, PLUG.public_key, 80, state,
                                                       cheque_body=latest)))
    assert balance(state, OWNER) == owner + 80 - FEE
    assert state.get("chan", channel)[2:4] == (300, 80)  # the channel stays open for the next call
    assert state.get("call", call_id)[6:8] == ("returned", 80)


def test_cooperative_close_pays_the_payee_and_returns_the_rest(state):
    plug = contract(state, metered(deposit=100))
    call_id = call(state, plug, 300)
    channel = first_channel(RENTER, OWNER)
    owner, renter = balance(state, OWNER), balance(state, RENTER)
    body = {"channel": channel, "cheque": cheque(RENTER, channel, plug, call_id, 70, state), "close": True}
    apply(state, W(OWNER, state).tx("settle", body), height=5)
    assert balance(state, OWNER) == owner + 70 - FEE and balance(state, RENTER) == renter + 230
    assert state.get("chan", channel)[7] == 5 and escrow_total(state) == 0
    rejected(state, W(OWNER, state).tx("settle", body), Reason.CHANNEL_CLOSED)
    # A new call opens a new channel, whose id differs: the old cheques are worth nothing there.
    call(state, plug, 100)
    assert state.get("chanof", address_of(RENTER.public_key) + address_of(OWNER.public_key)) == \
        (first_channel(RENTER, OWNER, 2), 2)
    old = {"channel": first_channel(RENTER, OWNER, 2), "cheque": body["cheque"]}
    rejected(state, W(OWNER, state).tx("settle", old), Reason.CHEQUE_MISMATCH)


def test_a_renters_close_with_an_older_cheque_is_answered_by_a_third_party_then_paid_out(state):
    plug = contract(state, metered(deposit=100))
    call_id = call(state, plug, 300)
    channel = first_channel(RENTER, OWNER)
    owner, renter = balance(state, OWNER), balance(state, RENTER)
    older = cheque(RENTER, channel, plug, call_id, 40, state)
    newer = cheque(RENTER, channel, plug, call_id, 90, state)
    rejected(state, W(WATCHER, state).tx("settle", {"channel": channel, "cheque": newer}), Reason.CHANNEL_NOT_CLOSING)
    rejected(state, W(CAROL, state).tx("refund", {"target": channel}), Reason.CHANNEL_NOT_CLOSING)
    apply(state, W(RENTER, state).tx("settle", {"channel": channel, "cheque": older, "close": True}))
    ends = NOW + state.constants.CHALLENGE_PERIOD
    assert state.get("chan", channel)[4:6] == (40, ends)
    rejected(state, W(RENTER, state).tx("settle", {"channel": channel, "close": True}), Reason.CHANNEL_CLOSING)
    rejected(state, W(RENTER, state).tx("call", {"contract": plug, "deposit": 100}), Reason.CHANNEL_CLOSING)
    rejected(state, W(WATCHER, state).tx("settle", {"channel": channel, "cheque": older}), Reason.CHEQUE_NOT_RISING)
    apply(state, W(WATCHER, state).tx("settle", {"channel": channel, "cheque": newer}), now=ends)  # a full node answers
    assert state.get("chan", channel)[4] == 90
    rejected(state, W(CAROL, state).tx("refund", {"target": channel}), Reason.CHALLENGE_RUNNING, now=ends)
    late = {"channel": channel, "cheque": cheque(RENTER, channel, plug, call_id, 95, state)}
    rejected(state, W(WATCHER, state).tx("settle", late), Reason.CHALLENGE_OVER, now=ends + 1)
    apply(state, W(CAROL, state).tx("refund", {"target": channel}), now=ends + 1)  # anyone pays it out
    assert balance(state, OWNER) == owner + 90 and balance(state, RENTER) == renter - FEE + 210
    assert escrow_total(state) == 0
    rejected(state, W(CAROL, state).tx("refund", {"target": channel}), Reason.CHANNEL_CLOSED, now=ends + 2)


def test_a_renters_close_with_no_cheque_keeps_what_was_withdrawn(state):
    plug = contract(state, metered(deposit=100))
    call_id = call(state, plug, 300)
    channel = first_channel(RENTER, OWNER)
    apply(state, W(OWNER, state).tx("settle", {"channel": channel,
                                               "cheque": cheque(RENTER, channel, plug, call_id, 60, state)}))
    owner, renter = balance(state, OWNER), balance(state, RENTER)
    apply(state, W(RENTER, state).tx("settle", {"channel": channel, "cheque": None, "close": True}))
    assert state.get("chan", channel)[4] == 60  # the close cannot go below what the payee already holds
    apply(state, W(OWNER, state).tx("settle", {"channel": channel, "close": True}))  # the payee ends it at once
    assert balance(state, OWNER) == owner - FEE and balance(state, RENTER) == renter - FEE + 240


def test_a_metered_call_nobody_returns_is_closed_by_refund_after_its_maximum_duration(state):
    plug = contract(state, metered(deposit=100, max_duration=HOUR))
    call_id = call(state, plug, 100)
    due = NOW + HOUR + state.constants.REFUND_TIMEOUT
    rejected(state, W(RENTER, state).tx("refund", {"target": call_id}), Reason.REFUND_TOO_EARLY, now=due - 1)
    renter = balance(state, RENTER)
    apply(state, W(RENTER, state).tx("refund", {"target": call_id}), now=due)
    assert state.get("call", call_id)[6] == "refunded" and balance(state, RENTER) == renter - FEE  # no escrow


def test_adding_challenge_period_keeps_old_genesis_hashes_and_a_devnet_may_set_it():
    """A chain started before CHALLENGE_PERIOD existed keeps its genesis hash (its store and every
    signature are bound to it); a genesis that sets another value commits to it."""
    from hub.chain.protocol.genesis import parse_genesis

    base = {"chain_id": "ruff-golden", "genesis_time": 1_700_000_000_000, "producers": ["11" * 32]}
    assert parse_genesis(base).hash.hex() == "e6aea46c8d852db011f374ae343de8479aa311bef9baed1d4185b8668611676a"
    fast = parse_genesis({**base, "constants": {"BLOCK_INTERVAL": 500}})
    assert fast.hash.hex() == "83c998808219c70ffa79d460581e7718aeba6ad0532b79684093daec6c07f50f"
    short = parse_genesis({**base, "constants": {"CHALLENGE_PERIOD": 5_000}})
    assert short.rules().CHALLENGE_PERIOD == 5_000 and short.hash != parse_genesis(base).hash
    assert parse_genesis({**base, "constants": {"CHALLENGE_PERIOD": HOUR}}).hash == parse_genesis(base).hash


def test_during_a_challenge_the_payee_may_withdraw_or_close_at_once_and_others_only_answer(state):
    plug = contract(state, metered(deposit=100))
    call_id = call(state, plug, 300)
    channel = first_channel(RENTER, OWNER)
    apply(state, W(RENTER, state).tx("settle", {"channel": channel, "cheque": cheque(RENTER, channel, plug, call_id, 30, state),
                                                "close": True}))
    rejected(state, W(WATCHER, state).tx("settle", {"channel": channel, "close": True,
                                                    "cheque": cheque(RENTER, channel, plug, call_id, 90, state)}),
             Reason.NOT_PAYEE)
    apply(state, W(OWNER, state).tx("settle", {"channel": channel, "cheque": cheque(RENTER, channel, plug, call_id, 60, state)}))
    assert state.get("chan", channel)[3:5] == (60, 60)  # withdrawn, and the close raised to it
    ends = NOW + state.constants.CHALLENGE_PERIOD
    late = cheque(RENTER, channel, plug, call_id, 80, state, call_amount=80)
    owner = balance(state, OWNER)
    apply(state, W(OWNER, state).tx("return", returned(OWNER, call_id, plug, PLUG.public_key, 80, state, cheque_body=late)),
          now=ends + 1)
    assert balance(state, OWNER) == owner - FEE  # after the challenge a cheque redeems nothing more
    renter = balance(state, RENTER)
    apply(state, W(OWNER, state).tx("settle", {"channel": channel, "close": True}), now=ends + 2)
    assert balance(state, RENTER) == renter + 240 and escrow_total(state) == 0

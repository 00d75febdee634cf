"""The market's rules: contracts, calls with escrow, returns, reviews, channels and their cheques
(docs/chain.md, "Market transactions"; issue #17).

Handlers as in ``rules.py``: every check first, then a ``write()`` closure. No token is created or
destroyed here: whatever leaves a balance goes into a call's escrow or a channel's deposit (the
sender's side is taken by ``rules.apply_tx`` through :func:`deposit_of`, with the fee, after it
checked the balance covers both), and whatever leaves an escrow or a deposit reaches a balance, so
``sum(balances) + escrow_total(state) == meta.supply`` after every block (tests/chain/
test_market_properties.py holds us to it, reorganisations included).

Two instruments:

- **prepaid** (Slock.it's lock): a ``call`` puts the deposit in the call's escrow for
  ``min(deposit // price, max_duration // window)`` windows; the controller's ``return`` pays
  ``used`` (at most ``price × windows`` and the deposit) and gives the rest back; without a return
  in time the renter's ``refund`` takes it all back.
- **metered** (µRaiden's channel, one per renter and payee for all the payee's contracts): a
  ``call`` tops the channel up and opens a session; cheques signed by the renter (cumulative
  ``amount`` over the channel) are redeemed by the payee's ``return`` or ``settle`` (capped by the
  deposit, without closing), or at a close: cooperative (the payee's ``settle{close}``) or the
  renter's alone, which a newer cheque may answer during ``CHALLENGE_PERIOD`` before anyone's
  ``refund`` pays out. A closed channel's id is never reused (it hashes an opening counter), so an
  old cheque cannot be redeemed again.

Why a refund waits for the paid time plus ``REFUND_TIMEOUT``, not ``REFUND_TIMEOUT`` from the call:
a controller answers when the paid window closes, and a window may be longer than the timeout; a
renter must not be able to take the deposit back in the middle of a rental it is using.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any

from hub.chain.protocol.errors import Reason, TxRejected
from hub.chain.protocol.state import State
from hub.chain.protocol.tx import Transaction
from hub.crypto.address import address_of
from hub.crypto.statements import Cheque, Signed

if TYPE_CHECKING:
    from hub.chain.protocol import payloads as p
    from hub.chain.protocol.rules import BlockContext

OPEN, RETURNED, REFUNDED = "open", "returned", "refunded"


def _hex(key: bytes) -> str:
    return key.hex()[:16]


def channel_id(renter: bytes, payee: bytes, opening: int) -> bytes:
    """The id of the ``opening``-th channel from ``renter`` to ``payee`` (public keys)."""
    return hashlib.sha256(b"channel" + renter + payee + opening.to_bytes(8, "big")).digest()


def link_key(renter: bytes, payee: bytes) -> bytes:
    """The ``chanof`` key of a renter and a payee (public keys): their addresses, concatenated."""
    return address_of(renter) + address_of(payee)


def is_live(state: State, contract: tuple) -> bool:
    """A contract is live while its device's controller on chain is the one who made it."""
    record = state.get("dev", contract[0])
    return record is not None and record[0] == contract[1]


def paid_duration(terms: tuple, windows: int) -> int:
    """How long (ms) a call may run: the paid windows (prepaid) or the longest session (metered)."""
    kind, _price, window, _rate, _meter, _interval, _deposit, max_duration = terms
    return windows * window if kind == "prepaid" else max_duration


def channel_escrow(chan: tuple) -> int:
    """What a channel still holds: nothing once closed (everything was paid out)."""
    _renter, _payee, deposit, withdrawn, _closing, _closing_at, _opened, closed = chan
    return 0 if closed else deposit - withdrawn


def escrow_total(state: State) -> int:
    """Every token held by the market: open calls' escrow and channels' remaining deposits."""
    calls = sum(c[2] for c in state.ns["call"].values() if c[6] == OPEN)
    return calls + sum(channel_escrow(c) for c in state.ns["chan"].values())


def deposit_of(model: "p.Call") -> int:
    """What a ``call`` takes from its sender besides the fee (``rules.spend``)."""
    return model.deposit


def _credit(state: State, address: bytes, amount: int) -> None:
    if amount:
        balance, nonce = state.get("acct", address, (0, 0))
        state.set("acct", address, (balance + amount, nonce))


def _bump(state: State, key: bytes, returned: int, negative: int) -> None:
    old_returned, old_negative = state.get("rev", key, (0, 0))
    state.set("rev", key, (old_returned + returned, old_negative + negative))


def _signed_by(state: State, signed: Signed, key: bytes, who: str) -> None:
    if not signed.verify(key, state.network):
        raise TxRejected(Reason.BAD_STATEMENT_SIGNATURE,
                         f"the {signed.statement.DOMAIN} is not signed by {who} {_hex(key)}… for this network "
                         "(chain id and genesis)")


def _cheque(state: State, signed: Signed, chan_id: bytes, chan: tuple) -> Cheque:
    """The cheque, checked against the channel it is redeemed from (its signature last)."""
    c: Cheque = signed.statement  # type: ignore[assignment]
    if c.chain != state.chain_id:
        raise TxRejected(Reason.WRONG_CHAIN, f"the cheque is for chain {c.chain!r}, this is {state.chain_id!r}")
    if c.channel != chan_id:
        raise TxRejected(Reason.CHEQUE_MISMATCH, f"the cheque is for channel {_hex(c.channel)}…, not {_hex(chan_id)}…")
    if c.renter != chan[0]:
        raise TxRejected(Reason.CHEQUE_MISMATCH, f"the cheque names renter {_hex(c.renter)}…, the channel's renter "
                         f"is {_hex(chan[0])}…")
    call = state.get("call", c.call)
    if call is None or call[3] != chan_id or call[0] != c.contract:
        raise TxRejected(Reason.CHEQUE_MISMATCH, "the cheque names a call and contract that did not go through "
                         "this channel")
    _signed_by(state, signed, chan[0], "the channel's renter")
    return c


def create_contract(state: State, tx: Transaction, m: "p.CreateContract", ctx: "BlockContext"):
    record = state.get("dev", m.device)
    if record is None or not record[0]:
        raise TxRejected(Reason.UNBOUND, "the device has no controller on chain; only a bound device is offered")
    if record[0] != tx.sender:
        raise TxRejected(Reason.NOT_CONTROLLER, f"the device's controller is {_hex(record[0])}…, this offer is "
                         f"sent by {_hex(tx.sender)}…")
    value = (m.device, tx.sender, tuple(sorted(m.commands)), m.terms.as_tuple(), m.endpoint, ctx.height,
             ctx.timestamp)

    def write() -> None:
        state.set("contract", tx.hash, value)
    return write


def call(state: State, tx: Transaction, m: "p.Call", ctx: "BlockContext"):
    contract = state.get("contract", m.contract)
    if contract is None:
        raise TxRejected(Reason.UNKNOWN_CONTRACT, f"no contract {m.contract.hex()} on chain")
    if not is_live(state, contract):
        raise TxRejected(Reason.CONTRACT_NOT_LIVE, "the device changed controller since the offer was made")
    controller, terms = contract[1], contract[3]
    kind, price, window, _rate, _meter, _interval, minimum, max_duration = terms
    renter = tx.sender
    if kind == "prepaid":
        if m.deposit < price:
            raise TxRejected(Reason.DEPOSIT_TOO_LOW, f"deposit {m.deposit} does not pay one window ({price})")
        windows = min(m.deposit // price, max_duration // window)
        value = (m.contract, renter, m.deposit, b"", ctx.timestamp, windows, OPEN, 0, 0)

        def write_prepaid() -> None:
            state.set("call", tx.hash, value)
        return write_prepaid
    link = link_key(renter, controller)
    current, openings = state.get("chanof", link, (b"", 0))
    chan = state.get("chan", current) if current else None
    new_link = None
    if chan is not None and not chan[7]:
        if chan[5]:
            raise TxRejected(Reason.CHANNEL_CLOSING, f"the channel {_hex(current)}… to this payee is closing; "
                             "call again once it is paid out (refund)")
        chan_id = current
        chan = (chan[0], chan[1], chan[2] + m.deposit, *chan[3:])
    else:
        openings += 1
        chan_id = channel_id(renter, controller, openings)
        chan = (renter, controller, m.deposit, 0, 0, 0, ctx.height, 0)
        new_link = (chan_id, openings)
    if chan[2] - chan[3] < minimum:
        raise TxRejected(Reason.DEPOSIT_TOO_LOW, f"the channel would hold {chan[2] - chan[3]}, the contract asks for "
                         f"at least {minimum}")
    value = (m.contract, renter, 0, chan_id, ctx.timestamp, 0, OPEN, 0, 0)

    def write_metered() -> None:
        state.set("chan", chan_id, chan)
        if new_link is not None:
            state.set("chanof", link, new_link)
        state.set("call", tx.hash, value)
    return write_metered


def return_(state: State, tx: Transaction, m: "p.Return", ctx: "BlockContext"):
    record = state.get("call", m.call)
    if record is None:
        raise TxRejected(Reason.UNKNOWN_CALL, f"no call {m.call.hex()} on chain")
    contract_id, renter, deposit, chan_id, time, windows, status, _used, _ended = record
    device, controller, _commands, terms = state.get("contract", contract_id)[:4]
    if tx.sender != controller:
        raise TxRejected(Reason.NOT_CONTROLLER, f"the contract's controller is {_hex(controller)}…, this return is "
                         f"sent by {_hex(tx.sender)}…")
    if status != OPEN:
        raise TxRejected(Reason.CALL_NOT_OPEN, f"the call is {status} already")
    consent = m.consent.statement
    got = (consent.chain, consent.contract, consent.call, consent.device, consent.controller)
    if got != (state.chain_id, contract_id, m.call, device, controller):
        raise TxRejected(Reason.CONSENT_MISMATCH, "the review consent must name this chain, the call's contract, "
                         "the call, the contract's device and its controller")
    kind, price = terms[0], terms[1]
    pay_controller = pay_renter = 0
    chan = None
    if kind == "prepaid":
        if m.cheque is not None:
            raise TxRejected(Reason.CHEQUE_MISMATCH, "a prepaid call is paid from its escrow; its return carries no cheque")
        cap = min(deposit, price * windows)
        if m.used > cap:
            raise TxRejected(Reason.USED_ABOVE_CAP, f"used {m.used}, the terms allow at most {cap} "
                             f"({windows} window(s) of {price}, deposit {deposit})")
        pay_controller, pay_renter = m.used, deposit - m.used
    else:
        if m.cheque is None:
            raise TxRejected(Reason.CHEQUE_MISMATCH, "a metered call's return carries the call's latest cheque")
        chan = state.get("chan", chan_id)
        cheque = m.cheque.statement
        if cheque.call != m.call:
            raise TxRejected(Reason.CHEQUE_MISMATCH, f"the cheque is for call {_hex(cheque.call)}…, not this one")
        if m.used > cheque.call_amount:
            raise TxRejected(Reason.USED_ABOVE_CAP, f"used {m.used}, the renter's cheque covers {cheque.call_amount} "
                             "for this call")
        _cheque(state, m.cheque, chan_id, chan)
        if not chan[7] and not (chan[5] and ctx.timestamp > chan[5]):  # not after a close's challenge
            pay_controller = max(0, min(cheque.amount, chan[2]) - chan[3])
            chan = (*chan[:3], chan[3] + pay_controller, *chan[4:])
    _signed_by(state, m.consent, controller, "the contract's controller")
    value = (contract_id, renter, deposit, chan_id, time, windows, RETURNED, m.used, ctx.timestamp)

    def write() -> None:
        state.set("call", m.call, value)
        if chan is not None and pay_controller:
            state.set("chan", chan_id, chan)
        _credit(state, address_of(controller), pay_controller)
        _credit(state, address_of(renter), pay_renter)
        _bump(state, contract_id, 1, 0)
        _bump(state, device, 1, 0)
    return write


def review(state: State, tx: Transaction, m: "p.Review", ctx: "BlockContext"):
    record = state.get("call", m.call)
    if record is None:
        raise TxRejected(Reason.UNKNOWN_CALL, f"no call {m.call.hex()} on chain")
    contract_id, renter, _deposit, _chan, _time, _windows, status, _used, ended = record
    if tx.sender != renter:
        raise TxRejected(Reason.NOT_RENTER, "only the call's renter reviews it")
    if status != RETURNED:
        raise TxRejected(Reason.CALL_NOT_RETURNED, f"the call is {status}; a review needs the controller's return "
                         "(and the consent it carries)")
    done = state.get("reviewed", m.call)
    if done is not None:
        raise TxRejected(Reason.ALREADY_REVIEWED, f"the call was reviewed at height {done}")
    period = state.constants.REVIEW_PERIOD
    if ctx.timestamp > ended + period:
        raise TxRejected(Reason.REVIEW_PERIOD_OVER, f"the call was returned at {ended}; reviews close {period} ms later")
    device = state.get("contract", contract_id)[0]

    def write() -> None:
        state.set("reviewed", m.call, ctx.height)
        _bump(state, contract_id, 0, 1)
        _bump(state, device, 0, 1)
    return write


def settle(state: State, tx: Transaction, m: "p.Settle", ctx: "BlockContext"):
    chan = state.get("chan", m.channel)
    if chan is None:
        raise TxRejected(Reason.UNKNOWN_CHANNEL, f"no channel {m.channel.hex()} on chain")
    renter, payee, deposit, withdrawn, closing, closing_at, opened, closed = chan
    if closed:
        raise TxRejected(Reason.CHANNEL_CLOSED, f"the channel was paid out at height {closed}")
    capped = None
    if m.cheque is not None:
        capped = min(_cheque(state, m.cheque, m.channel, chan).amount, deposit)  # above the deposit: capped
    challenge_over = bool(closing_at) and ctx.timestamp > closing_at
    if capped is not None and challenge_over:
        raise TxRejected(Reason.CHALLENGE_OVER, f"the challenge ended at {closing_at}; the channel pays out as it stands")
    sender = tx.sender
    if sender == payee and m.close:  # cooperative close (or the payee ending a renter's close early)
        final = max(capped or 0, withdrawn, closing)
        return _payout(state, m.channel, chan, final, ctx)
    if sender == payee:  # withdraw what the cheque covers, keep the channel open
        if capped is None:
            raise TxRejected(Reason.CHEQUE_MISMATCH, "a withdrawal needs a cheque")
        if capped <= withdrawn:
            raise TxRejected(Reason.CHEQUE_NOT_RISING, f"the cheque covers {capped}; {withdrawn} is withdrawn already")
        new = (renter, payee, deposit, capped, max(closing, capped) if closing_at else 0, closing_at, opened, 0)

        def write_withdraw() -> None:
            state.set("chan", m.channel, new)
            _credit(state, address_of(payee), capped - withdrawn)
        return write_withdraw
    if sender == renter:
        if not m.close:
            raise TxRejected(Reason.NOT_PAYEE, "only the payee withdraws; the renter may close (close: true)")
        if closing_at:
            raise TxRejected(Reason.CHANNEL_CLOSING, f"the channel is closing already (challenge until {closing_at})")
        new = (renter, payee, deposit, withdrawn, max(capped or 0, withdrawn),
               ctx.timestamp + state.constants.CHALLENGE_PERIOD, opened, 0)
    else:  # anyone else may only answer a renter's close with a newer cheque
        if m.close:
            raise TxRejected(Reason.NOT_PAYEE, "only the channel's payee or renter closes it; others answer a close")
        if not closing_at:
            raise TxRejected(Reason.CHANNEL_NOT_CLOSING, "the channel is open; others than its payee only answer a "
                             "renter's close")
        if capped is None:
            raise TxRejected(Reason.CHEQUE_MISMATCH, "an answer to a close carries a cheque")
        if capped <= closing:
            raise TxRejected(Reason.CHEQUE_NOT_RISING, f"the cheque covers {capped}; the close stands at {closing}")
        new = (renter, payee, deposit, withdrawn, capped, closing_at, opened, 0)

    def write() -> None:
        state.set("chan", m.channel, new)
    return write


def _payout(state: State, chan_id: bytes, chan: tuple, final: int, ctx: "BlockContext"):
    """Close ``chan``: the payee gets ``final`` in all (less what it withdrew), the renter the rest."""
    renter, payee, deposit, withdrawn, _closing, closing_at, opened, _closed = chan
    closed = (renter, payee, deposit, final, final, closing_at, opened, ctx.height)

    def write() -> None:
        state.set("chan", chan_id, closed)
        _credit(state, address_of(payee), final - withdrawn)
        _credit(state, address_of(renter), deposit - final)
    return write


def refund(state: State, tx: Transaction, m: "p.Refund", ctx: "BlockContext"):
    record = state.get("call", m.target)
    if record is not None:
        contract_id, renter, deposit, chan_id, time, windows, status, used, _ended = record
        if tx.sender != renter:
            raise TxRejected(Reason.NOT_RENTER, "only the call's renter takes its deposit back")
        if status != OPEN:
            raise TxRejected(Reason.CALL_NOT_OPEN, f"the call is {status} already")
        terms = state.get("contract", contract_id)[3]
        due = time + paid_duration(terms, windows) + state.constants.REFUND_TIMEOUT
        if ctx.timestamp < due:
            raise TxRejected(Reason.REFUND_TOO_EARLY, f"the controller may return the call until {due}; the block's "
                             f"time is {ctx.timestamp}")
        value = (contract_id, renter, deposit, chan_id, time, windows, REFUNDED, used, ctx.timestamp)

        def write_call() -> None:
            state.set("call", m.target, value)
            _credit(state, address_of(renter), deposit)
        return write_call
    chan = state.get("chan", m.target)
    if chan is None:
        raise TxRejected(Reason.UNKNOWN_TARGET, f"no call or channel {m.target.hex()} on chain")
    _renter, _payee, _deposit, withdrawn, closing, closing_at, _opened, closed = chan
    if closed:
        raise TxRejected(Reason.CHANNEL_CLOSED, f"the channel was paid out at height {closed}")
    if not closing_at:
        raise TxRejected(Reason.CHANNEL_NOT_CLOSING, "the channel is open; its renter closes it first (settle, close)")
    if ctx.timestamp <= closing_at:
        raise TxRejected(Reason.CHALLENGE_RUNNING, f"the challenge runs until {closing_at}; the block's time is "
                         f"{ctx.timestamp}")
    return _payout(state, m.target, chan, max(closing, withdrawn), ctx)


HANDLERS: dict[str, Any] = {
    "create_contract": create_contract,
    "call": call,
    "return": return_,
    "review": review,
    "settle": settle,
    "refund": refund,
}

"""What each transaction type checks and does.

Discipline that the property tests hold us to: every check comes before the first write, so a
rejected transaction leaves the state exactly as it found it, and a producer can drop it from a
block it is building without any rollback. The same split lets the mempool run a type's checks
(:func:`check_type`) against the head state at admission, with the very code ``apply_block`` runs,
so a transaction that breaks its type's rules is refused on entry instead of being gossiped and
then dropped without paying a fee.

Only types with implemented effects are valid (:data:`ENABLED_TYPES`); ``data_anchor`` is refused
(``type_not_enabled``) until its effects land, see docs/chain.md. The device types' handlers are in
``devices.py``, the market's in ``market.py``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from hub.chain.protocol import devices, dpos, market
from hub.chain.protocol.block import BlockFormatError, Header
from hub.chain.protocol.errors import Reason, TxRejected
from hub.chain.protocol.state import State
from hub.chain.protocol.tx import CONTRACT_TYPES, DEVICE_TYPES, Transaction
from hub.crypto.address import address_of, encode_address

if TYPE_CHECKING:
    from hub.chain.protocol import payloads as p


@dataclass(frozen=True)
class BlockContext:
    """What a transaction may know about the block it is in."""

    height: int
    timestamp: int
    round: int
    producers: frozenset[bytes]  # addresses of this round's producers


def check_envelope(state: State, tx: Transaction, now: int, verify: Callable[[Transaction], bool]) -> None:
    """Everything but the type's own rules: payload, fee, expiry, signature, nonce, fee balance."""
    c = state.constants
    if tx.size > c.MAX_TX_BYTES:
        raise TxRejected(Reason.TOO_LARGE, f"{tx.size} bytes, the limit is {c.MAX_TX_BYTES}")
    tx.model()
    if tx.type not in ENABLED_TYPES:
        raise TxRejected(Reason.TYPE_NOT_ENABLED, f"{tx.type} has no effect yet and is not accepted until it has")
    minimum = c.fee_for(tx.size) + (c.CANDIDATE_FEE if tx.type == "register_candidate" else 0)
    if tx.fee < minimum:
        raise TxRejected(Reason.FEE_TOO_LOW, f"fee {tx.fee} is below the minimum {minimum} for this transaction")
    if tx.valid_until < now:
        raise TxRejected(Reason.EXPIRED, f"valid until {tx.valid_until}, block time is {now}")
    if tx.valid_until > now + c.MAX_TX_LIFETIME:
        raise TxRejected(Reason.VALIDITY_TOO_LONG, f"valid_until may be at most {c.MAX_TX_LIFETIME} ms ahead")
    if not verify(tx):
        raise TxRejected(Reason.BAD_SIGNATURE, "the signature does not verify for this sender and network "
                         "(chain id and genesis): signed for another network, or by another key")
    expected = state.nonce(tx.sender_address) + 1
    if tx.nonce < expected:
        raise TxRejected(Reason.NONCE_TOO_LOW, f"nonce {tx.nonce}, the account's next nonce is {expected}")
    if tx.nonce > expected:
        raise TxRejected(Reason.NONCE_TOO_HIGH, f"nonce {tx.nonce}, the account's next nonce is {expected}")


def apply_tx(state: State, tx: Transaction, ctx: BlockContext, verify: Callable[[Transaction], bool]) -> int:
    """Check ``tx`` and apply it; returns the fee it pays to the block's producer."""
    check_envelope(state, tx, ctx.timestamp, verify)
    model = tx.model()  # validated by check_envelope, so this is the cached model
    sender = tx.sender_address
    balance, nonce = state.get("acct", sender, (0, 0))
    spend = tx.fee
    if tx.type == "transfer":
        spend += model.amount
    elif tx.type == "bind_device":
        spend += devices.sale_price(model)
    elif tx.type == "call":
        spend += market.deposit_of(model)
    if balance < spend:
        raise TxRejected(Reason.INSUFFICIENT_BALANCE, f"needs {spend}, the account holds {balance}")
    finish = _HANDLERS[tx.type](state, tx, model, ctx)  # checks only; returns the writes
    state.set("acct", sender, (balance - spend, nonce + 1))
    finish()
    return tx.fee


def spend(tx: Transaction) -> int:
    """What ``tx`` takes from its sender's balance: the fee, a transfer's amount, a sale's price, a
    call's deposit (the mempool counts it per sender, so it never admits more than an account can pay)."""
    if tx.type == "transfer":
        return tx.fee + tx.model().amount
    if tx.type == "bind_device":
        return tx.fee + devices.sale_price(tx.model())
    if tx.type == "call":
        return tx.fee + market.deposit_of(tx.model())
    return tx.fee


def check_type(state: State, tx: Transaction, ctx: BlockContext) -> None:
    """The rules of ``tx``'s type against ``state`` (the checks of :func:`apply_tx` after the
    envelope and the fee balance), writing nothing; raises TxRejected. ``tx`` passed
    :func:`check_envelope`, so its type is enabled and its payload valid."""
    _HANDLERS[tx.type](state, tx, tx.model(), ctx)


def next_block_context(state: State, timestamp: int, producers: frozenset[bytes] | None = None) -> BlockContext:
    """What the block after the head would tell its transactions, as far as it is known before the
    block exists (its time is taken as ``timestamp``): for admission to the mempool. ``producers``:
    the addresses of ``dpos.schedule_after(state)``, when the caller has them already."""
    height = state.head.height + 1
    if producers is None:
        producers = frozenset(address_of(pk) for pk in dpos.schedule_after(state))
    return BlockContext(height, timestamp, dpos.round_of(height, state.constants), producers)


# Each handler checks, then returns a function doing the writes (so all checks precede all writes).

def _transfer(state: State, tx: Transaction, m: "p.Transfer", ctx: BlockContext):
    def write() -> None:
        bal, nonce = state.get("acct", m.to, (0, 0))
        state.set("acct", m.to, (bal + m.amount, nonce))
    return write


def _register(state: State, tx: Transaction, m: "p.RegisterCandidate", ctx: BlockContext):
    sender = tx.sender_address
    if state.get("dq", sender) is not None:
        raise TxRejected(Reason.DISQUALIFIED, "this account was disqualified and cannot stand again")
    if state.get("cand", sender) is not None:
        raise TxRejected(Reason.ALREADY_CANDIDATE, "this account is already a candidate")
    if state.get("name", m.name) is not None:
        raise TxRejected(Reason.NAME_TAKEN, f"candidate name {m.name!r} is taken")

    def write() -> None:
        state.set("cand", sender, (m.name, tx.sender, ctx.height))
        state.set("name", m.name, sender)
    return write


def _vote(state: State, tx: Transaction, m: "p.Vote", ctx: BlockContext):
    limit = state.constants.MAX_VOTES
    if len(m.candidates) > limit:
        raise TxRejected(Reason.TOO_MANY_VOTES, f"{len(m.candidates)} candidates, at most {limit}")
    if len(set(m.candidates)) != len(m.candidates):
        raise TxRejected(Reason.DUPLICATE_VOTE, "a candidate is named twice")
    for address in m.candidates:
        if state.get("cand", address) is None:
            raise TxRejected(Reason.UNKNOWN_CANDIDATE, f"{encode_address(address)} is not a candidate")
        if state.get("dq", address) is not None:
            raise TxRejected(Reason.DISQUALIFIED, f"{encode_address(address)} is disqualified")
    choice = tuple(sorted(m.candidates)) or None

    def write() -> None:
        state.set("vote", tx.sender_address, choice)
    return write


def _poll(state: State, tx: Transaction, m: "p.DisqualifyPoll", ctx: BlockContext):
    if tx.sender_address not in ctx.producers:
        raise TxRejected(Reason.NOT_A_PRODUCER, "only a producer of this round may open a poll")
    if state.get("cand", m.target) is None:
        raise TxRejected(Reason.UNKNOWN_CANDIDATE, f"{encode_address(m.target)} is not a candidate")
    if state.get("dq", m.target) is not None:
        raise TxRejected(Reason.DISQUALIFIED, f"{encode_address(m.target)} is already disqualified")
    if any(t == m.target for _, (t, _o, _r) in state.items("poll")):
        raise TxRejected(Reason.POLL_EXISTS, "a poll against this candidate is already open this round")

    def write() -> None:
        state.set("poll", tx.hash, (m.target, tx.sender_address, ctx.round))
    return write


def _poll_vote(state: State, tx: Transaction, m: "p.DisqualifyVote", ctx: BlockContext):
    voter = tx.sender_address
    if state.get("cand", voter) is None or state.get("dq", voter) is not None:
        raise TxRejected(Reason.NOT_A_CANDIDATE, "only candidates vote in disqualification polls")
    if state.get("poll", m.poll) is None:
        raise TxRejected(Reason.UNKNOWN_POLL, "no open poll with that id (polls close at the end of their round)")
    if state.get("pvote", m.poll + voter) is not None:
        raise TxRejected(Reason.ALREADY_VOTED, "this candidate already voted in that poll")

    def write() -> None:
        state.set("pvote", m.poll + voter, m.approve)
    return write


def _evidence(state: State, tx: Transaction, m: "p.Evidence", ctx: BlockContext):
    try:
        a, b = Header.from_dict(m.first), Header.from_dict(m.second)
    except BlockFormatError as exc:
        raise TxRejected(Reason.BAD_EVIDENCE, f"not a header: {exc}") from None
    if a.producer != b.producer or a.slot != b.slot:
        raise TxRejected(Reason.BAD_EVIDENCE, "the headers are not by one producer for one slot")
    if a.chain_id != state.chain_id or b.chain_id != state.chain_id:
        raise TxRejected(Reason.BAD_EVIDENCE, "a header is from another chain")
    if a.hash == b.hash:
        raise TxRejected(Reason.BAD_EVIDENCE, "the two headers are the same")
    if not (a.signature_ok(state.genesis_hash) and b.signature_ok(state.genesis_hash)):
        raise TxRejected(Reason.BAD_EVIDENCE, "a header's signature does not verify")
    offender = address_of(a.producer)
    if state.get("dq", offender) is not None:
        raise TxRejected(Reason.DISQUALIFIED, "that producer is already disqualified")

    def write() -> None:
        state.set("dq", offender, ctx.height)
    return write


_HANDLERS = {
    "transfer": _transfer,
    "register_candidate": _register,
    "vote": _vote,
    "disqualify_poll": _poll,
    "disqualify_vote": _poll_vote,
    "evidence": _evidence,
    **devices.HANDLERS,
    **market.HANDLERS,
}
#: Types whose handler checks nothing beyond the envelope and the balance (admission skips
#: :func:`check_type` for them: a transfer is most of the load, and building its context cost 2 us).
TYPES_WITHOUT_RULES = frozenset({"transfer"})
#: Types whose effects are implemented: the only ones a transaction may have.
ENABLED_TYPES = frozenset(_HANDLERS)
#: A block with one of these mints BLOCK_REWARD: device and contract types, once they have effects.
REWARDED_TYPES = (DEVICE_TYPES | CONTRACT_TYPES) & ENABLED_TYPES

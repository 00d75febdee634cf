"""The device transactions' rules: who controls a device, commands sent through the chain, their
outcomes, and the anchors of hubs' command logs (docs/chain.md, "Device transactions").

Handlers as in ``rules.py``: every check first, then a ``write()`` closure, so a refused
transaction writes nothing and the mempool can run the same checks at admission. Statements are
the ones every verifier checks (``hub.crypto.statements``); the chain checks their signatures
against ``state.network``, so a statement signed for another chain or genesis does not verify.

Why the chain keeps a binding's ``time`` and ``seq``: a device-signed ``Bind`` or ``Reset`` applies
only if its time is above the binding's (a factory reset or a newer binding supersedes, an old one
replayed never does), and a hand-over or a sale names the ``seq`` it hands over, so each can be used
once. Hand-overs and sales date the binding at the block's time (never earlier than it was), so a
``Bind`` signed before a sale cannot take the device back from the buyer. Whoever holds a printed
private key can still sign a newer ``Bind``: the whitepaper's weakness, which the strong mode
(``BindProof``, the key never leaves the device) avoids.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from hub.chain.protocol.constants import MAX_STATEMENT_AHEAD
from hub.chain.protocol.errors import Reason, TxRejected
from hub.chain.protocol.state import State
from hub.chain.protocol.tx import Transaction
from hub.crypto.address import address_of
from hub.crypto.statements import Bind, BindProof, Handover, Reset, Revoke, Sale, Signed

if TYPE_CHECKING:
    from hub.chain.protocol import payloads as p
    from hub.chain.protocol.rules import BlockContext

NO_BINDING = (b"", 0, 0, 0)  # (controller, seq, time, epoch) of a device the chain has never seen


def _hex(key: bytes) -> str:
    return key.hex()[:16]


def _signed_by(state: State, signed: Signed, key: bytes, who: str) -> None:
    if not signed.verify(key, state.network):
        raise TxRejected(Reason.BAD_STATEMENT_SIGNATURE,
                         f"the {signed.statement.DOMAIN} statement is not signed by {who} {_hex(key)}… for this "
                         "network (chain id and genesis)")


def _controlled_by(record: tuple | None, signer: bytes, what: str) -> tuple:
    """The device's binding, which ``signer`` must control."""
    if record is None or not record[0]:
        raise TxRejected(Reason.UNBOUND, f"the device has no controller on chain; a {what} needs one")
    if record[0] != signer:
        raise TxRejected(Reason.NOT_CONTROLLER,
                         f"the {what} is signed as {_hex(signer)}…, the device's controller is {_hex(record[0])}…")
    return record


def sale_price(model: "p.BindDevice") -> int:
    """What a ``bind_device`` transaction pays besides its fee: a sale's price (0 otherwise)."""
    s = model.statement.statement
    return s.price if isinstance(s, Sale) else 0


def bind_device(state: State, tx: Transaction, m: "p.BindDevice", ctx: "BlockContext"):
    signed = m.statement
    s = signed.statement
    record = state.get("dev", s.device)
    controller, seq, time, epoch = record or NO_BINDING
    seller = b""
    if isinstance(s, (Bind, BindProof, Reset)):
        _signed_by(state, signed, s.device, "the device key")
        if s.time > ctx.timestamp + MAX_STATEMENT_AHEAD:
            raise TxRejected(Reason.FUTURE_TIME, f"the {s.DOMAIN} is dated {s.time}, more than "
                             f"{MAX_STATEMENT_AHEAD} ms after the block's time {ctx.timestamp}")
        if record is not None and s.time <= time:
            raise TxRejected(Reason.STALE_BINDING, f"the {s.DOMAIN} is dated {s.time}; the device's binding on "
                             f"chain is dated {time} and only a later one supersedes it")
        new = (b"" if isinstance(s, Reset) else s.controller, seq + 1, s.time, epoch)
    elif isinstance(s, Revoke):
        _controlled_by(record, s.controller, "revocation")
        _signed_by(state, signed, s.controller, "the controller")
        if s.epoch <= epoch:
            raise TxRejected(Reason.STALE_EPOCH, f"epoch {s.epoch}; the device's epoch on chain is already {epoch}")
        new = (controller, seq, time, s.epoch)
    else:  # Handover or Sale: the controller's signed hand-over of binding `seq`
        signer = s.seller if isinstance(s, Sale) else s.controller
        what = "sale" if isinstance(s, Sale) else "hand-over"
        _controlled_by(record, signer, what)
        if s.seq != seq:
            raise TxRejected(Reason.WRONG_SEQ, f"the {what} names binding {s.seq}; the device's binding on chain "
                             f"is {seq} (a {what} is used once, for the binding it names)")
        if isinstance(s, Sale):
            if s.expires < ctx.timestamp:
                raise TxRejected(Reason.OFFER_EXPIRED, f"the offer expired at {s.expires}; the block's time is {ctx.timestamp}")
            if s.buyer and s.buyer != tx.sender:
                raise TxRejected(Reason.WRONG_BUYER, f"the offer is for {_hex(s.buyer)}… only, this transaction "
                                 f"is sent by {_hex(tx.sender)}…")
            seller = address_of(s.seller)
        _signed_by(state, signed, signer, "the controller")
        new = (tx.sender if isinstance(s, Sale) else s.to, seq + 1, max(time, ctx.timestamp), epoch)
    # A sale's price is taken from the sender with its fee (rules.apply_tx, which checks the
    # balance covers both before any write); here it reaches the seller, so supply is unchanged.
    price = s.price if seller else 0

    def write() -> None:
        state.set("dev", s.device, new)
        if price:
            balance, nonce = state.get("acct", seller, (0, 0))
            state.set("acct", seller, (balance + price, nonce))
    return write


def control_command(state: State, tx: Transaction, m: "p.ControlCommand", ctx: "BlockContext"):
    command = m.command.statement
    if command.chain != state.chain_id:
        raise TxRejected(Reason.WRONG_CHAIN, f"the command is for chain {command.chain!r}, this is {state.chain_id!r}")
    record = state.get("dev", command.device)
    if record is None or not record[0]:
        raise TxRejected(Reason.UNBOUND, "the device has no controller on chain, so nobody may command it through the chain")
    controller, _seq, _time, epoch = record
    if command.signer != controller:
        if m.grant is None:
            raise TxRejected(Reason.NOT_CONTROLLER, f"the signer {_hex(command.signer)}… is not the device's "
                             "controller and the transaction carries no grant")
        grant = m.grant.statement
        if grant.device != command.device:
            raise TxRejected(Reason.BAD_STATEMENT, "the grant is for another device than the command")
        if grant.grantee != command.signer:
            raise TxRejected(Reason.NOT_GRANTED, f"the grant is to {_hex(grant.grantee)}…, the command is signed "
                             f"by {_hex(command.signer)}…")
        if grant.controller != controller:
            raise TxRejected(Reason.NOT_GRANTED, f"the grant was made by {_hex(grant.controller)}…, who does not "
                             "control the device now")
        if grant.epoch < epoch:
            raise TxRejected(Reason.GRANT_REVOKED, f"the grant is of epoch {grant.epoch}; the device's revocation "
                             f"epoch on chain is {epoch}")
        if not grant.allows(command.entity, command.command, ctx.timestamp):
            if ctx.timestamp < grant.not_before or (grant.not_after and ctx.timestamp > grant.not_after):
                detail = f"the grant is valid from {grant.not_before} to {grant.not_after or 'no end'}, the block's time is {ctx.timestamp}"
            else:
                detail = f"the grant does not include {command.entity}.{command.command}"
            raise TxRejected(Reason.NOT_GRANTED, detail)
        _signed_by(state, m.grant, controller, "the controller")
    _signed_by(state, m.command, command.signer, "its signer")
    device, height = command.device, ctx.height

    def write() -> None:
        state.set("ctl", tx.hash, (device, height))
    return write


def state_change(state: State, tx: Transaction, m: "p.StateChange", ctx: "BlockContext"):
    controller = (state.get("dev", m.device) or NO_BINDING)[0]
    if tx.sender != m.device and not (controller and tx.sender == controller):
        raise TxRejected(Reason.NOT_CONTROLLER, "a device's state is reported by the device's own key or its controller")
    if m.command:
        open_command = state.get("ctl", m.command)
        if open_command is None:
            done = state.get("done", m.command)
            if done is not None:
                raise TxRejected(Reason.ALREADY_REPORTED, f"that command's outcome was reported at height {done[2]}")
            raise TxRejected(Reason.UNKNOWN_COMMAND, f"no control_command {m.command.hex()} on chain")
        if open_command[0] != m.device:
            raise TxRejected(Reason.UNKNOWN_COMMAND, f"the command {m.command.hex()[:16]}… is for another device")
    outcome = (m.ok, m.reason, ctx.height)

    def write() -> None:
        if m.command:
            state.set("ctl", m.command, None)
            state.set("done", m.command, outcome)
    return write


def command_log(state: State, tx: Transaction, m: "p.CommandLog", ctx: "BlockContext"):
    keeper = tx.sender_address
    following, batches = state.get("clog", keeper, (0, 0))
    if m.first > following:
        raise TxRejected(Reason.LOG_GAP, f"the batch starts at entry {m.first}; the log on chain ends before "
                         f"{following}, so entries {following} to {m.first - 1} would never be anchored")
    if m.first < following:
        raise TxRejected(Reason.LOG_OVERLAP, f"the batch starts at entry {m.first}; entries up to {following - 1} "
                         "are anchored already")
    record = (m.root, m.count, m.first_time, m.last_time, ctx.height)

    def write() -> None:
        state.set("clog", keeper, (m.first + m.count, batches + 1))
        state.set("anchor", anchor_key(keeper, m.first), record)
    return write


def anchor_key(keeper: bytes, first: int) -> bytes:
    """The ``anchor`` key of the batch of ``keeper``'s log that starts at entry ``first``."""
    return keeper + first.to_bytes(8, "big")


HANDLERS = {
    "bind_device": bind_device,
    "control_command": control_command,
    "state_change": state_change,
    "command_log": command_log,
}

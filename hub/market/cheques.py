"""The renter's cheques, checked and kept: the hub's side of a metered channel (issue #17).

A renter pays for metered use with off-chain cheques (:class:`~hub.crypto.statements.Cheque`)
whose ``amount`` is cumulative over the channel: only the latest is worth anything, so the hub keeps
the latest per channel (what ``settle`` and an answer to an uncooperative close carry) and per call
(what that call's ``return`` carries). A cheque is accepted only if the chain would pay it *and* it
pays for usage the hub really metered, checked here, in this order, cheapest first:

- it is a cheque for this chain (``chain`` in clear; the signature binds the genesis too);
- its channel is one of this hub's: opened on chain by ``renter`` with this hub's controller as
  payee, and not closing (``unknown_channel``, ``wrong_renter``, ``channel_closing``);
- its call is one of this hub's open calls, on that channel, for that contract (``unknown_call``,
  ``wrong_channel``, ``wrong_contract``): a cheque of another channel cannot be replayed here, and
  since a closed channel's id is never reused, neither can one of an earlier opening;
- the renter signed it (``forged``);
- ``amount`` and ``call_amount`` rise over the last kept, and the channel's increase covers the
  call's (``not_rising``, ``inconsistent``); ``amount`` is within the deposit (``above_deposit``);
- the receipt it names is one the hub issued for that call, and the price of the usage up to that
  receipt is covered by ``call_amount`` (``unknown_receipt``, ``underpaid``), unless the cheque
  pays the whole deposit (all the channel can pay: the market then ends the access).

Why the hub keeps its own view of channels and calls instead of asking the chain per cheque:
cheques arrive several a second per renter (5,000/s per hub is the target), must keep being checked
while the chain is unreachable, and the chain facts they rest on (a channel's deposit, a call being
open) change only through final blocks, which :mod:`hub.market.closewatch` follows and notes here.
Receipts are the market's (it signs and keeps them, market.db), reached through the ``receipts``
look-up. What is noted and every cheque kept is in SQLite (WAL), committed before the answer says
"accepted", so a kill -9 loses no cheque the renter was told is kept.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hub.crypto.encoding import decode, encode
from hub.crypto.signing import Network
from hub.crypto.statements import Cheque, Signed, StatementError
from hub.store.sqlite import open_wal

#: Refusal reasons and the HTTP status the API gives each (one cheque per request).
STATUS: dict[str, int] = {
    "malformed": 422, "wrong_chain": 422, "forged": 403,
    "unknown_channel": 404, "unknown_call": 404, "unknown_receipt": 404,
    "wrong_renter": 409, "wrong_channel": 409, "wrong_contract": 409, "call_not_open": 409,
    "channel_closing": 409, "not_rising": 409, "inconsistent": 409, "above_deposit": 409, "underpaid": 409,
}



class ChequeRefused(Exception):
    def __init__(self, reason: str, message: str) -> None:
        assert reason in STATUS, reason
        self.reason, self.message = reason, message
        super().__init__(f"{reason}: {message}")

    @property
    def status(self) -> int:
        return STATUS[self.reason]

    def as_dict(self) -> dict[str, Any]:
        return {"ok": False, "reason": self.reason, "message": self.message}


@dataclass(frozen=True)
class Channel:
    """What the chain says of one of this hub's channels (``chan`` namespace), as of a final block."""

    renter: bytes  # the renter's public key
    deposit: int
    withdrawn: int = 0
    closing_at: int = 0  # 0: open; else the block time the renter's close started the challenge
    closing_amount: int = 0  # the amount the close named (what an answer must beat)


@dataclass(frozen=True)
class Call:
    channel: bytes
    contract: bytes
    renter: bytes
    open: bool = True


@dataclass(frozen=True)
class Kept:
    """The latest cheque kept for a channel or a call."""

    amount: int
    call_amount: int
    signed: Signed

    def as_dict(self) -> dict[str, Any]:
        st = self.signed.statement
        return {"channel": st.channel.hex(), "call": st.call.hex(), "amount": self.amount,
                "call_amount": self.call_amount, "receipt": st.receipt.hex(), "cheque": self.signed.to_json()}


SCHEMA = (
    """CREATE TABLE IF NOT EXISTS cheque_channels (
        channel BLOB PRIMARY KEY, renter BLOB NOT NULL, deposit INTEGER NOT NULL, withdrawn INTEGER NOT NULL,
        closing_at INTEGER NOT NULL, closing_amount INTEGER NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS cheque_calls (
        call BLOB PRIMARY KEY, channel BLOB NOT NULL, contract BLOB NOT NULL, renter BLOB NOT NULL,
        open INTEGER NOT NULL)""",
    # price: what the usage up to this receipt costs under the contract's terms (the hub's own
    # metering), so a cheque naming it must carry at least that much for its call.
    """CREATE TABLE IF NOT EXISTS cheque_receipts (
        hash BLOB PRIMARY KEY, call BLOB NOT NULL, price INTEGER NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS cheque_latest (
        channel BLOB PRIMARY KEY, amount INTEGER NOT NULL, call_amount INTEGER NOT NULL, signed BLOB NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS cheque_call_latest (
        call BLOB PRIMARY KEY, amount INTEGER NOT NULL, call_amount INTEGER NOT NULL, signed BLOB NOT NULL)""",
)


def connect(path: Path) -> sqlite3.Connection:
    path.parent.mkdir(parents=True, exist_ok=True)
    return open_wal(path, _create_tables)


def _create_tables(conn: sqlite3.Connection) -> None:
    for statement in SCHEMA:
        conn.execute(statement)


def _signed_from_row(raw: bytes) -> Signed:
    return Signed.from_body(decode(raw))


class ChequeBook:
    """Checks cheques against what the market noted from final blocks, keeps the latest ones.

    ``payee`` is this hub's controller key: only channels paying it are noted. Thread-safe (one
    lock): the API checks batches in a worker thread while the market notes blocks."""

    def __init__(self, path: Path, network: Network,
                 receipts: Callable[[bytes], tuple[bytes, int] | None] | None = None) -> None:
        """``receipts``: the receipt issued under a hash, as (its call, the price of the usage up to
        it), or None; the market's (it keeps the receipts it signs). Without it, the receipts noted
        here with :meth:`note_receipt`."""
        self.path = Path(path)
        self.network = network
        self._lock = threading.Lock()
        self._conn = connect(self.path)
        c = self._conn
        self.channels = {r[0]: Channel(r[1], r[2], r[3], r[4], r[5])
                         for r in c.execute("SELECT channel, renter, deposit, withdrawn, closing_at, closing_amount "
                                            "FROM cheque_channels")}
        self.calls = {r[0]: Call(r[1], r[2], r[3], bool(r[4]))
                      for r in c.execute("SELECT call, channel, contract, renter, open FROM cheque_calls")}
        self.receipts = {r[0]: (r[1], r[2]) for r in c.execute("SELECT hash, call, price FROM cheque_receipts")}
        self.receipt = self.receipts.get if receipts is None else (lambda h: self.receipts.get(h) or receipts(h))
        self.latest: dict[bytes, Kept] = {r[0]: Kept(r[1], r[2], _signed_from_row(r[3])) for r in
                                          c.execute("SELECT channel, amount, call_amount, signed FROM cheque_latest")}
        self.by_call: dict[bytes, Kept] = {r[0]: Kept(r[1], r[2], _signed_from_row(r[3])) for r in
                                           c.execute("SELECT call, amount, call_amount, signed FROM cheque_call_latest")}

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    # --- what the market notes from final blocks and its own metering ------------------------------
    def note_channel(self, channel: bytes, info: Channel) -> None:
        with self._lock:
            self.channels[channel] = info
            self._conn.execute("INSERT OR REPLACE INTO cheque_channels VALUES (?, ?, ?, ?, ?, ?)",
                               (channel, info.renter, info.deposit, info.withdrawn, info.closing_at,
                                info.closing_amount))

    def note_call(self, call: bytes, info: Call) -> None:
        with self._lock:
            self.calls[call] = info
            self._conn.execute("INSERT OR REPLACE INTO cheque_calls VALUES (?, ?, ?, ?, ?)",
                               (call, info.channel, info.contract, info.renter, int(info.open)))

    def note_receipt(self, receipt_hash: bytes, call: bytes, price: int) -> None:
        """A receipt the hub issued for ``call``; ``price``: the usage up to it under the terms."""
        with self._lock:
            self.receipts[receipt_hash] = (call, price)
            self._conn.execute("INSERT OR REPLACE INTO cheque_receipts VALUES (?, ?, ?)", (receipt_hash, call, price))

    def forget_call(self, call: bytes) -> None:
        """A returned or refunded call: its receipts are no longer needed (its latest cheque stays)."""
        with self._lock:
            info = self.calls.get(call)
            if info is not None:
                self.calls[call] = Call(info.channel, info.contract, info.renter, False)
                self._conn.execute("UPDATE cheque_calls SET open = 0 WHERE call = ?", (call,))
            for h in [h for h, (c, _) in self.receipts.items() if c == call]:
                del self.receipts[h]
            self._conn.execute("DELETE FROM cheque_receipts WHERE call = ?", (call,))

    def execute(self, sql: str, params: tuple = ()) -> list[tuple]:
        """One statement on market.db under the book's lock, for the parts that keep their rows beside
        the cheques (the close watcher): never inside a batch's transaction."""
        with self._lock:
            return self._conn.execute(sql, params).fetchall()

    # --- reading ----------------------------------------------------------------------------------
    def latest_for_channel(self, channel: bytes) -> Signed | None:
        """The cheque a ``settle`` (or an answer to a close) carries."""
        kept = self.latest.get(channel)
        return kept.signed if kept is not None else None

    def latest_for_call(self, call: bytes) -> Signed | None:
        """The cheque the call's ``return`` carries."""
        kept = self.by_call.get(call)
        return kept.signed if kept is not None else None

    # --- checking ---------------------------------------------------------------------------------
    def check(self, signed: Signed) -> Cheque:
        """The cheque if it would be accepted now; raises :class:`ChequeRefused` naming why not."""
        st = signed.statement
        if not isinstance(st, Cheque):
            raise ChequeRefused("malformed", f"a cheque statement expected, got {st.DOMAIN!r}")
        if st.chain != self.network.chain_id:
            raise ChequeRefused("wrong_chain", f"cheque.chain: {st.chain!r} is not this hub's chain "
                                f"{self.network.chain_id!r}")
        channel = self.channels.get(st.channel)
        if channel is None:
            raise ChequeRefused("unknown_channel", f"cheque.channel: {st.channel.hex()} is not a channel to this "
                                "hub's controller on chain (or not in a final block yet)")
        if channel.renter != st.renter:
            raise ChequeRefused("wrong_renter", f"cheque.renter: channel {st.channel.hex()[:16]} was opened by "
                                f"{channel.renter.hex()[:16]}…, not {st.renter.hex()[:16]}…")
        if channel.closing_at:
            raise ChequeRefused("channel_closing", f"cheque.channel: {st.channel.hex()[:16]} is closing on chain; "
                                "no new cheques on it")
        call = self.calls.get(st.call)
        if call is None:
            raise ChequeRefused("unknown_call", f"cheque.call: {st.call.hex()} is not a call to this hub's "
                                "contracts (or not in a final block yet)")
        if call.channel != st.channel:
            raise ChequeRefused("wrong_channel", f"cheque.channel: call {st.call.hex()[:16]} is paid through "
                                f"channel {call.channel.hex()[:16]}, not {st.channel.hex()[:16]}")
        if call.contract != st.contract:
            raise ChequeRefused("wrong_contract", f"cheque.contract: call {st.call.hex()[:16]} is to contract "
                                f"{call.contract.hex()[:16]}, not {st.contract.hex()[:16]}")
        if not call.open:
            raise ChequeRefused("call_not_open", f"cheque.call: {st.call.hex()[:16]} has ended")
        if not signed.verify(st.renter, self.network):
            raise ChequeRefused("forged", "sig: not the renter's signature over this cheque on this chain")
        last = self.latest.get(st.channel)
        if last is not None and st.amount <= last.amount:
            raise ChequeRefused("not_rising", f"cheque.amount: {st.amount} is not above {last.amount}, the "
                                "latest cheque kept for this channel")
        last_call = self.by_call.get(st.call)
        last_call_amount = last_call.call_amount if last_call is not None else 0
        if st.call_amount < last_call_amount:
            raise ChequeRefused("not_rising", f"cheque.call_amount: {st.call_amount} is below {last_call_amount}, "
                                "the latest kept for this call")
        if st.amount - (last.amount if last is not None else 0) < st.call_amount - last_call_amount:
            raise ChequeRefused("inconsistent", f"cheque.amount: rises by less than call_amount "
                                f"({st.call_amount - last_call_amount}) since the latest cheque kept")
        if st.amount > channel.deposit:
            raise ChequeRefused("above_deposit", f"cheque.amount: {st.amount} is above the channel's deposit "
                                f"{channel.deposit}")
        issued = self.receipt(st.receipt)
        if issued is None or issued[0] != st.call:
            raise ChequeRefused("unknown_receipt", f"cheque.receipt: {st.receipt.hex()[:16]} is not a receipt this "
                                f"hub issued for call {st.call.hex()[:16]}")
        if st.call_amount < issued[1] and st.amount < channel.deposit:  # at the deposit: all it can pay
            raise ChequeRefused("underpaid", f"cheque.call_amount: {st.call_amount} is below {issued[1]}, the "
                                "price of the usage up to the receipt it names")
        return st

    def accept(self, signed: Signed) -> dict[str, Any]:
        """Check and keep one cheque, committed before answering."""
        return self.accept_many([signed])[0]

    def accept_many(self, items: Iterable[Signed | Any]) -> list[dict[str, Any]]:
        """Check and keep each (a :class:`Signed`, or its JSON form), in order, in one commit. Each
        answer is ``{ok: true, ...}`` or ``{ok: false, reason, message}``."""
        answers = []
        with self._lock:
            conn = self._conn
            conn.execute("BEGIN IMMEDIATE")
            try:
                for item in items:
                    try:
                        signed = item if isinstance(item, Signed) else Signed.from_json(item)
                    except (StatementError, KeyError) as exc:
                        answers.append({"ok": False, "reason": "malformed", "message": str(exc)})
                        continue
                    answers.append(self._accept_locked(signed))
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                # What the memory holds must match the disk: reload what the rollback undid.
                self.latest = {r[0]: Kept(r[1], r[2], _signed_from_row(r[3])) for r in conn.execute(
                    "SELECT channel, amount, call_amount, signed FROM cheque_latest")}
                self.by_call = {r[0]: Kept(r[1], r[2], _signed_from_row(r[3])) for r in conn.execute(
                    "SELECT call, amount, call_amount, signed FROM cheque_call_latest")}
                raise
        return answers

    def _accept_locked(self, signed: Signed) -> dict[str, Any]:
        st = signed.statement
        kept = self.latest.get(getattr(st, "channel", b""))
        if kept is not None and kept.signed == signed:  # the same cheque again (a retry): already kept
            return {"ok": True, "duplicate": True, "channel": st.channel.hex(), "amount": st.amount,
                    "call_amount": st.call_amount}
        try:
            self.check(signed)
        except ChequeRefused as exc:
            return exc.as_dict()
        entry = Kept(st.amount, st.call_amount, signed)
        raw = encode(signed.to_body())
        self._conn.execute("INSERT OR REPLACE INTO cheque_latest VALUES (?, ?, ?, ?)",
                           (st.channel, st.amount, st.call_amount, raw))
        self._conn.execute("INSERT OR REPLACE INTO cheque_call_latest VALUES (?, ?, ?, ?)",
                           (st.call, st.amount, st.call_amount, raw))
        self.latest[st.channel] = entry
        self.by_call[st.call] = entry
        return {"ok": True, "duplicate": False, "channel": st.channel.hex(), "amount": st.amount,
                "call_amount": st.call_amount}


__all__ = ["STATUS", "Call", "Channel", "ChequeBook", "ChequeRefused", "Kept"]

"""What the cheque book learns from final blocks, and the answer to a renter's uncooperative close.

The cheque book (:mod:`hub.market.cheques`) checks cheques against this hub's channels and open
calls. This watcher follows final blocks (through :mod:`hub.chain.access`, embedded or remote) and
notes them: a ``call`` to one of this hub's contracts (the call and its channel, with the deposit
the chain now holds), a ``return`` or ``refund`` that ends it, a ``settle`` that changes a channel.

A renter may close its channel alone, with an older cheque than the hub holds, or none: the chain
then starts a challenge of ``CHALLENGE_PERIOD`` during which a cheque of a higher amount wins. For
each such close on one of this hub's channels, when the close names less than the latest cheque
kept, the watcher sends ``settle{channel, cheque, close: true}`` as the payee: the chain then pays
the channel out at once (payee: the cheque's amount, renter: the rest), which both answers the
challenge and ends it. And it hands the latest cheque of each channel to the full nodes named in
``market: {watchers: [...]}`` (:mod:`hub.chain.node.watch`), which answer for the hub while it is away.

Why final blocks: a close in a block a reorganisation drops needs no answer, and the challenge
lasts an hour against a few seconds to finality. Why its own cursor (market.db, beside the
cheques): the book is right only if every final block was noted, whatever the market's follower
did; a restart resumes where it stopped, and a close seen but not answered before a kill -9 is in
``cheque_answers`` and is answered on the next pass. While the chain is unreachable cheques are
still checked against what was noted; answers wait for it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any

from hub.market.cheques import Call, Channel, ChequeBook
from hub.chain.first_cursor import start_height

log = logging.getLogger("hub.market.closewatch")

BATCH = 100
MAX_BACKOFF = 30.0
HAND_OVER_EVERY = 2.0  # seconds between hand-overs of changed cheques to the watchers
#: Refusals that say the answer is moot (paid out, or someone answered higher first): no retry.
SETTLED_REASONS = frozenset({"channel_closed", "challenge_over", "cheque_not_rising"})


class CloseWatch:
    def __init__(self, chain: Any, book: ChequeBook, key: Any, *, watchers: list[str] | tuple[str, ...] = (),
                 ours: Callable[[bytes], bool | None] = lambda contract: None) -> None:
        """``key``: the hub's controller key, the payee of its channels. ``ours(contract)``: whether
        a contract is this hub's (None: not known, read the chain)."""
        self.chain = chain
        self.book = book
        self.key = key
        self.watchers = list(watchers)
        self.ours = ours
        book.execute("CREATE TABLE IF NOT EXISTS cheque_cursor (genesis BLOB PRIMARY KEY, height INTEGER NOT NULL)")
        # when this follower first wanted each chain (ms), for its first cursor (hub.chain.first_cursor.start_height)
        book.execute("CREATE TABLE IF NOT EXISTS cheque_follow_start (genesis BLOB PRIMARY KEY, "
                     "since INTEGER NOT NULL)")
        # channels closed by their renter, to be answered (done = 1: answered, paid out, or nothing to beat)
        book.execute("CREATE TABLE IF NOT EXISTS cheque_answers (channel BLOB PRIMARY KEY, tx BLOB, "
                     "done INTEGER NOT NULL)")
        block_s = chain.constants.BLOCK_INTERVAL / 1000
        self.interval = min(max(block_s / 2, 0.05), 2.0)
        self.down: str | None = None
        self.answered: list[dict] = []  # what this run answered, for status and logs
        self._handed: dict[tuple[str, bytes], int] = {}  # (watcher, channel) -> amount handed over
        self._last_hand_over = 0.0
        self._handing: asyncio.Task | None = None
        self._refused: dict[tuple[str, bytes], Any] = {}
        self._contracts: dict[bytes, bool] = {}  # contract id -> this hub's (its controller is the payee)

    # --- the loop ------------------------------------------------------------------------------------
    async def run(self) -> None:
        from hub.chain.access import ChainUnavailable

        delay = self.interval
        while True:
            try:
                more = await self.step()
            except ChainUnavailable as exc:
                if self.down is None:
                    log.warning("market: the chain cannot be reached (%s); cheques are checked against what is "
                                "known, closes are answered when it is back", exc)
                self.down = str(exc)
                delay = min(max(delay * 2, self.interval), MAX_BACKOFF)
                more = False
            else:
                self.down = None
                delay = self.interval
            if (self.watchers and time.monotonic() - self._last_hand_over >= HAND_OVER_EVERY
                    and (self._handing is None or self._handing.done())):
                # Beside the loop, not in it: a watcher that hangs must not hold up answering closes.
                self._last_hand_over = time.monotonic()
                self._handing = asyncio.create_task(asyncio.to_thread(self._hand_over_logged),
                                                    name="cheques-hand-over")
            if not more:
                await asyncio.sleep(delay)

    async def step(self) -> bool:
        more = await self.follow()
        await self.answer_pending()
        return more

    def status(self) -> dict[str, Any]:
        return {"cursor": self._cursor(), "down": self.down, "channels": len(self.book.channels),
                "open_calls": sum(1 for c in self.book.calls.values() if c.open), "answered": self.answered[-20:],
                "watchers": self.watchers}

    # --- following ----------------------------------------------------------------------------------
    def _cursor(self) -> int | None:
        row = self.book.execute("SELECT height FROM cheque_cursor WHERE genesis = ?",
                                (self.chain.network.genesis_hash,))
        return row[0][0] if row else None

    def _set_cursor(self, height: int) -> None:
        self.book.execute("INSERT OR REPLACE INTO cheque_cursor VALUES (?, ?)",
                          (self.chain.network.genesis_hash, height))

    async def follow(self) -> bool:
        cursor = self._cursor()
        if cursor is None:
            # From the market's start, not the chain's: calls made before are in no block ahead. Not
            # from the first look either, which may come much later (the node unreachable at start).
            genesis = self.chain.network.genesis_hash
            self.book.execute("INSERT OR IGNORE INTO cheque_follow_start VALUES (?, ?)", (genesis, _now_ms()))
            if not self.chain.available():
                return False
            since = self.book.execute("SELECT since FROM cheque_follow_start WHERE genesis = ?", (genesis,))[0][0]
            cursor = start_height(self.chain.head()[1], since, _now_ms(), self.chain.constants.BLOCK_INTERVAL)
            self._set_cursor(cursor)
        final = self.chain.head()[1]
        if final <= cursor:
            return False
        blocks = await self.chain.blocks_since(cursor, min(BATCH, final - cursor))
        for block in blocks:
            if not block.final:
                return False
            for tx in block.txs:
                if tx.type in ("call", "return", "settle", "refund"):
                    await self._seen(tx)
            self._set_cursor(block.height)
            cursor = block.height
        return final - cursor > 0 and len(blocks) >= BATCH

    async def _seen(self, tx: Any) -> None:
        p = tx.payload
        if tx.type == "call":
            contract = p.get("contract")
            mine = self.ours(contract)
            if mine is None:
                mine = self._contracts.get(contract)
            if mine is None:
                entry = await self.chain.state("contract", contract)
                mine = self._contracts[contract] = bool(entry) and bytes(entry[1]) == self.key.public_key
            if not mine:
                return
            entry = await self.chain.state("call", tx.hash)
            if not entry or not entry[3]:
                return  # refused, or prepaid: no channel
            chan = await self.chain.state("chan", bytes(entry[3]))
            if chan is None or bytes(chan[1]) != self.key.public_key:
                return  # another payee's
            self._note_channel(bytes(entry[3]), chan)
            self.book.note_call(tx.hash, Call(bytes(entry[3]), bytes(entry[0]), bytes(entry[1])))
        elif tx.type == "return":
            if p.get("call") in self.book.calls:
                self.book.forget_call(p["call"])
                await self._refresh(self.book.calls[p["call"]].channel)
        elif tx.type == "refund":
            target = p.get("target")
            if target in self.book.calls:
                self.book.forget_call(target)
            elif target in self.book.channels:
                await self._refresh(target)
        elif tx.type == "settle":
            channel = p.get("channel")
            if channel not in self.book.channels:
                return
            await self._refresh(channel)
            if p.get("close") and tx.sender != self.key.public_key:
                self.book.execute("INSERT OR IGNORE INTO cheque_answers VALUES (?, NULL, 0)", (channel,))
                log.info("market: the renter closed channel %s… alone (tx %s); checking it against the latest "
                         "cheque", channel.hex()[:16], tx.hash.hex()[:16])

    async def _refresh(self, channel: bytes) -> tuple | None:
        chan = await self.chain.state("chan", channel)
        if chan is not None:
            self._note_channel(channel, chan)
        return chan

    def _note_channel(self, channel: bytes, chan: tuple) -> None:
        renter, _payee, deposit, withdrawn, closing, closing_at, _opened, closed = chan[:8]
        # A paid-out channel is closing for good: no cheque on it is accepted any more.
        self.book.note_channel(channel, Channel(bytes(renter), int(deposit), int(withdrawn),
                                                int(closing_at) or (1 if closed else 0), int(closing)))

    # --- answering ----------------------------------------------------------------------------------
    async def answer_pending(self) -> None:
        from hub.chain.access import TxRefused

        for channel, sent in self.book.execute("SELECT channel, tx FROM cheque_answers WHERE done = 0"):
            chan = await self._refresh(channel)
            if chan is None:
                self._done(channel)
                continue
            _renter, _payee, deposit, _withdrawn, closing, closing_at, _opened, closed = chan[:8]
            kept = self.book.latest_for_channel(channel)
            if closed or not closing_at or kept is None or min(kept.statement.amount, deposit) <= closing:
                self._done(channel)  # paid out, or the close already names as much as the hub holds
                continue
            if sent is not None:
                status = (await self.chain.status(sent))["status"]
                if status in ("pending", "included", "final"):
                    continue
            try:
                tx = await self.chain.submit(self.key, "settle", {"channel": channel, "cheque": kept.to_body(), "close": True})
            except TxRefused as exc:
                if exc.reason in SETTLED_REASONS:
                    self._done(channel)
                elif self._refused.get(("", channel)) != exc.reason:  # once per reason, not every pass
                    self._refused[("", channel)] = exc.reason
                    log.warning("market: the answer to the close of channel %s… waits: %s", channel.hex()[:16], exc)
                continue
            self.book.execute("UPDATE cheque_answers SET tx = ? WHERE channel = ?", (tx, channel))
            amount = kept.statement.amount
            self.answered.append({"channel": channel.hex(), "amount": amount, "closing": closing, "tx": tx.hex()})
            log.info("market: answered the close of channel %s… (it named %d) with the cheque of %d: tx %s",
                     channel.hex()[:16], closing, amount, tx.hex()[:16])

    def _done(self, channel: bytes) -> None:
        self.book.execute("UPDATE cheque_answers SET done = 1 WHERE channel = ?", (channel,))

    # --- handing over to watchers ---------------------------------------------------------------------
    def _hand_over_logged(self) -> None:
        try:
            self.hand_over()
        except Exception:  # noqa: BLE001 - logged; the next hand-over tries again
            log.exception("market: handing cheques to the watchers failed")

    def hand_over(self, watchers: list[str] | None = None) -> list[dict[str, Any]]:
        """POST each channel's latest cheque not handed over yet to each watcher's ``/watch``; one
        answer per (watcher, channel). Blocking (urllib): call in a worker thread."""
        out = []
        for url in watchers if watchers is not None else self.watchers:
            for channel, kept in list(self.book.latest.items()):
                if self._handed.get((url, channel), -1) >= kept.amount:
                    continue
                answer = post_watch(url, kept.signed.to_json())
                out.append({"watcher": url, "channel": channel.hex(), **answer})
                if answer.get("ok") or answer.get("error") in ("not_rising", "channel_closed"):
                    self._handed[(url, channel)] = kept.amount
                elif answer.get("error") == "unreachable":
                    log.warning("market: watcher %s cannot be reached: %s", url, answer.get("message"))
                    break
                elif self._refused.get((url, channel)) != answer.get("error"):  # once per reason
                    self._refused[(url, channel)] = answer.get("error")
                    log.warning("market: watcher %s refused the cheque of channel %s…: %s: %s", url,
                                channel.hex()[:16], answer.get("error"), answer.get("message"))
        return out


def post_watch(url: str, cheque: dict, timeout: float = 10.0) -> dict[str, Any]:
    """Hand one cheque to a full node's watch service; its answer, or ``{error: unreachable}``."""
    req = urllib.request.Request(url.rstrip("/") + "/watch", data=json.dumps(cheque).encode(), method="POST",
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return json.loads(resp.read() or b"{}")
    except urllib.error.HTTPError as exc:
        try:
            return {"ok": False, **json.loads(exc.read() or b"{}")}
        except ValueError:
            return {"ok": False, "error": f"http_{exc.code}", "message": str(exc)}
    except (OSError, ValueError) as exc:
        return {"ok": False, "error": "unreachable", "message": str(exc)}


def _now_ms() -> int:
    """Wall clock: block timestamps are wall-clock slot starts."""
    return time.time_ns() // 1_000_000

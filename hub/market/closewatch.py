"""Answering a renter's uncooperative close with the newer cheque (issue #17).

A renter may close its channel alone, with an older cheque than the hub holds, or none: the chain
then starts a challenge of ``CHALLENGE_PERIOD`` during which a cheque of a higher amount wins. This
watcher follows final blocks (through :mod:`hub.chain.access`, embedded or remote), and for each
``settle{close: true}`` on one of this hub's channels that it did not send itself, reads the
channel on chain; when the close names less than the latest cheque kept
(:mod:`hub.market.cheques`), it sends ``settle{channel, cheque, close: true}`` as the payee: the
chain then pays the channel out at once (payee: the cheque's amount, renter: the rest), which both
answers the challenge and ends it.

Why final blocks: a close in a block a reorganisation drops needs no answer, and the challenge
lasts an hour against a few seconds to finality. Why it keeps its own cursor (market.db): it runs
whether or not the market's follower is busy, and a restart resumes where it stopped (a close seen
but not answered before a kill -9 is in the ``pending`` table and is answered again). While the
chain is unreachable nothing can be answered anyway: it retries with back-off, and the hand-over
to full nodes (:mod:`hub.market.watchers`) covers an owner whose hub stays away.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

log = logging.getLogger("hub.market.closewatch")

BATCH = 100
MAX_BACKOFF = 30.0
#: Refusals that say the answer is moot (paid out, or someone answered higher first): no retry.
SETTLED_REASONS = frozenset({"channel_closed", "challenge_over", "cheque_not_rising"})


class CloseWatch:
    def __init__(self, chain: Any, book: Any, key: Any) -> None:
        self.chain = chain
        self.book = book
        self.key = key  # the hub's controller key: the payee of its channels
        book.execute("CREATE TABLE IF NOT EXISTS cheque_cursor (genesis BLOB PRIMARY KEY, height INTEGER NOT NULL)")
        # channel -> the answer sent ("" until sent): what a restart must still see through
        book.execute("CREATE TABLE IF NOT EXISTS cheque_answers (channel BLOB PRIMARY KEY, tx BLOB, done INTEGER)")
        block_s = chain.constants.BLOCK_INTERVAL / 1000
        self.interval = min(max(block_s / 2, 0.05), 2.0)
        self.down: str | None = None
        self.answered: list[dict] = []  # what this run answered, for status and logs

    # --- the loop ------------------------------------------------------------------------------------
    async def run(self) -> None:
        from hub.chain.access import ChainUnavailable

        delay = self.interval
        while True:
            try:
                more = await self.step()
            except ChainUnavailable as exc:
                if self.down is None:
                    log.warning("market: the chain cannot be reached (%s); closes are answered when it is back", exc)
                self.down = str(exc)
                delay = min(max(delay * 2, self.interval), MAX_BACKOFF)
                more = False
            else:
                self.down = None
                delay = self.interval
            if not more:
                await asyncio.sleep(delay)

    async def step(self) -> bool:
        more = await self.follow()
        await self.answer_pending()
        return more

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
            if not self.chain.available():
                return False
            cursor = self.chain.head()[1]
            self._set_cursor(cursor)
        final = self.chain.head()[1]
        if final <= cursor:
            return False
        blocks = await self.chain.blocks_since(cursor, min(BATCH, final - cursor))
        for block in blocks:
            if not block.final:
                return False
            for tx in block.txs:
                if tx.type == "settle":
                    self._seen_settle(tx)
            self._set_cursor(block.height)
            cursor = block.height
        return final - cursor > 0 and len(blocks) >= BATCH

    def _seen_settle(self, tx: Any) -> None:
        try:
            m = tx.model()
        except Exception:  # noqa: BLE001 - a final block holds only valid ones
            return
        if not m.close or m.channel not in self.book.channels or tx.sender == self.key.public_key:
            return
        self.book.execute("INSERT OR IGNORE INTO cheque_answers VALUES (?, NULL, 0)", (m.channel,))
        log.info("market: the renter closed channel %s… alone (tx %s); checking it against the latest cheque",
                 m.channel.hex()[:16], tx.hash.hex()[:16])

    # --- answering ----------------------------------------------------------------------------------
    async def answer_pending(self) -> None:
        from hub.chain.access import TxRefused
        from hub.market.cheques import Channel

        rows = self.book.execute("SELECT channel, tx FROM cheque_answers WHERE done = 0")
        for channel, sent in rows:
            chan = await self.chain.state("chan", channel)
            if chan is None:
                self._done(channel)
                continue
            renter, _payee, deposit, withdrawn, closing, closing_at, _opened, closed = chan[:8]
            known = self.book.channels.get(channel)
            if known is not None and closing_at and not known.closing_at:  # no new cheques on a closing channel
                self.book.note_channel(channel, Channel(known.renter, deposit, withdrawn, closing_at, closing))
            kept = self.book.latest_for_channel(channel)
            if closed or not closing_at or kept is None or min(kept.amount, deposit) <= closing:
                self._done(channel)  # paid out, or the close already names as much as the hub holds
                continue
            if sent is not None:
                status = (await self.chain.status(sent))["status"]
                if status in ("pending", "included", "final"):
                    continue
            try:
                tx = await self.chain.submit(self.key, "settle", {"channel": channel, "cheque": kept.signed,
                                                                  "close": True})
            except TxRefused as exc:
                if exc.reason in SETTLED_REASONS:
                    self._done(channel)
                else:
                    log.warning("market: the answer to the close of channel %s… waits: %s", channel.hex()[:16], exc)
                continue
            self.book.execute("UPDATE cheque_answers SET tx = ? WHERE channel = ?", (tx, channel))
            self.answered.append({"channel": channel.hex(), "amount": kept.amount, "closing": closing, "tx": tx.hex()})
            log.info("market: answered the close of channel %s… (it named %d) with the cheque of %d: tx %s",
                     channel.hex()[:16], closing, kept.amount, tx.hex()[:16])

    def _done(self, channel: bytes) -> None:
        self.book.execute("UPDATE cheque_answers SET done = 1 WHERE channel = ?", (channel,))


"""The watch service: a full node answers renters' closes for payees whose hub is away (issue #17).

µRaiden left an owner whose server was offline during a challenge period to lose the difference.
Here the owner's hub hands its latest cheque per channel to any full node it chooses
(``POST /watch``, :func:`add_watch_routes`); the node keeps it (``watch.db`` in its data
directory) and, when a final block shows the channel closing with less than the cheque covers and
the challenge is still running, sends ``settle{channel, cheque, close: false}`` itself, signed with
a key of its own (``watch.key``, made on first use; its address must hold the fee: ``GET /watch``
shows it). The chain lets anyone answer a close with a higher cheque, and the payout still goes to
the payee: the node gains nothing by cheating and cannot send the money elsewhere.

Bounded, since anyone may call it: one body of at most :data:`MAX_BODY` bytes, one cheque kept per
channel (the latest; an older one is refused), :data:`MAX_WATCHED` channels in all; a cheque is
kept only if it checks against the chain (the channel exists and is not paid out, the renter
signed it for this chain, it rises over the one kept).
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from starlette.requests import Request

from hub.crypto.encoding import decode, encode
from hub.crypto.statements import Cheque, Signed, StatementError

log = logging.getLogger("hub.chain.watch")

MAX_BODY = 4096
MAX_WATCHED = 10_000
WATCH_KEY_FILE = "watch.key"
INTERVAL = 0.5  # seconds between looks at the final block
STATUS = {"malformed": 422, "wrong_chain": 422, "forged": 403, "unknown_channel": 404, "channel_closed": 409,
          "not_rising": 409, "full": 507}


class WatchRefused(Exception):
    def __init__(self, reason: str, message: str) -> None:
        self.reason, self.message = reason, message
        super().__init__(f"{reason}: {message}")


class WatchService:
    """``announce`` hands a submitted transaction to the network (gossip), as the RPC does."""

    def __init__(self, node: Any, directory: Path, announce: Callable[[Any], None] = lambda tx: None) -> None:
        from hub.chain.node.files import read_key, write_key
        from hub.crypto.keys import PrivateKey

        self.node = node
        self.network = node.genesis.network
        self.announce = announce
        key_path = directory / WATCH_KEY_FILE
        if not key_path.exists():
            write_key(key_path, PrivateKey.generate())
        self.key = read_key(key_path)
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(directory / "watch.db", isolation_level=None, check_same_thread=False)
        self._conn.execute("PRAGMA journal_mode = WAL")
        self._conn.execute("PRAGMA synchronous = NORMAL")
        self._conn.execute("CREATE TABLE IF NOT EXISTS watched (channel BLOB PRIMARY KEY, amount INTEGER NOT NULL, "
                           "signed BLOB NOT NULL, answer BLOB, done INTEGER NOT NULL DEFAULT 0)")
        self.watched: dict[bytes, tuple[int, Signed]] = {
            ch: (amount, Signed.from_body(decode(raw)))
            for ch, amount, raw in self._conn.execute("SELECT channel, amount, signed FROM watched WHERE done = 0")}
        self.cursor = node.lib  # closes before start-up: every watched channel is looked at once (recheck)
        self._recheck: set[bytes] = set(self.watched)
        self.answers: list[dict] = []
        self._sent: dict[bytes, bytes] = {}  # channel -> the answer last sent (while it is in the mempool)
        self._failed: dict[bytes, str] = {}  # channel -> why its answer was last refused (logged once)

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    # --- taking cheques ------------------------------------------------------------------------------
    def hand_over(self, data: Any) -> dict[str, Any]:
        """Check one cheque (its JSON form) against the head state and keep it; raises WatchRefused."""
        try:
            signed = Signed.from_json(data)
        except StatementError as exc:
            raise WatchRefused("malformed", str(exc)) from None
        st = signed.statement
        if not isinstance(st, Cheque):
            raise WatchRefused("malformed", f"a cheque statement expected, got {st.DOMAIN!r}")
        if st.chain != self.network.chain_id:
            raise WatchRefused("wrong_chain", f"cheque.chain: {st.chain!r} is not this node's chain "
                               f"{self.network.chain_id!r}")
        with self.node.lock:
            chan = self.node.state.get("chan", st.channel)
        if chan is None:
            raise WatchRefused("unknown_channel", f"cheque.channel: no channel {st.channel.hex()} on chain")
        renter, _payee, deposit, _withdrawn, _closing, _closing_at, _opened, closed = chan[:8]
        if closed:
            raise WatchRefused("channel_closed", f"cheque.channel: {st.channel.hex()[:16]}… was paid out at "
                               f"height {closed}")
        if st.renter != renter or not signed.verify(renter, self.network):
            raise WatchRefused("forged", "sig: not the channel's renter's signature over this cheque on this chain")
        with self._lock:
            kept = self.watched.get(st.channel)
            if kept is not None and st.amount <= kept[0]:
                raise WatchRefused("not_rising", f"cheque.amount: {st.amount} is not above {kept[0]}, the cheque "
                                   "kept for this channel")
            if kept is None and len(self.watched) >= MAX_WATCHED:
                raise WatchRefused("full", f"this node watches {MAX_WATCHED} channels already")
            self._conn.execute("INSERT OR REPLACE INTO watched (channel, amount, signed, answer, done) "
                               "VALUES (?, ?, ?, NULL, 0)", (st.channel, st.amount, encode(signed.to_body())))
            self.watched[st.channel] = (st.amount, signed)
            self._recheck.add(st.channel)  # handed over during a challenge: answer now
        return {"ok": True, "channel": st.channel.hex(), "amount": st.amount, "capped": min(st.amount, deposit)}

    def info(self) -> dict[str, Any]:
        from hub.crypto.address import address_of, encode_address

        address = address_of(self.key.public_key)
        with self.node.lock:
            balance = self.node.state.balance(address)
        return {"address": encode_address(address), "balance": balance, "watched": len(self.watched),
                "max_watched": MAX_WATCHED, "answers": self.answers[-20:]}

    # --- answering ------------------------------------------------------------------------------------
    def step(self, now_ms: int) -> list[bytes]:
        """Closes in final blocks since the last look, and channels handed over since: answer each
        whose close names less than the cheque kept. Returns the answers' transaction hashes."""
        from hub.chain.protocol.tx import Transaction

        node = self.node
        with node.lock:
            lib = node.lib
            for h in range(self.cursor + 1, lib + 1):
                block = node.store.canonical_block(h)
                if block is None:
                    break
                for raw in block.txs:
                    if b"settle" not in raw and b"refund" not in raw:  # cheap first look; parsed below
                        continue
                    tx = Transaction.from_bytes(raw)
                    target = tx.payload.get("channel" if tx.type == "settle" else "target")
                    if tx.type in ("settle", "refund") and target in self.watched:
                        self._recheck.add(target)
                self.cursor = h
            todo = [c for c in self._recheck if c in self.watched]
            self._recheck.clear()
            sent = []
            for channel in todo:
                tx = self._answer(channel, now_ms)
                if tx is not None:
                    sent.append(tx)
        for tx in sent:
            self.announce(tx)
        return [tx.hash for tx in sent]

    def _answer(self, channel: bytes, now_ms: int) -> Any:
        from hub.chain.access import TxRefused, build_tx
        from hub.chain.protocol.errors import TxRejected
        from hub.crypto.address import address_of

        node = self.node
        chan = node.state.get("chan", channel)
        amount, signed = self.watched[channel]
        if chan is None or chan[7]:  # paid out: nothing left to watch
            self._finish(channel)
            return None
        _renter, _payee, deposit, _withdrawn, closing, closing_at, _opened, _closed = chan[:8]
        if not closing_at or min(amount, deposit) <= closing:
            return None  # open (watch on), or the close names as much already
        if node.head.timestamp > closing_at:
            log.warning("watch: channel %s… closed with %d; the challenge ended before this node could answer "
                        "with %d", channel.hex()[:16], closing, amount)
            self._finish(channel)
            return None
        if self._sent.get(channel) in node.mempool:
            self._recheck.add(channel)  # the answer is on its way: look again once it is in a block
            return None
        sender = address_of(self.key.public_key)
        node.drain_inbox(now_ms)
        queue = node.mempool.by_sender.get(sender) or {}
        nonce = max(node.state.nonce(sender), max(queue, default=0)) + 1
        try:
            tx = build_tx(self.key, self.network, node.constants, "settle",
                          {"channel": channel, "cheque": signed.to_body(), "close": False}, nonce, now_ms)
            node.submit(tx.raw, now_ms)
        except (TxRefused, TxRejected) as exc:
            if self._failed.get(channel) != str(exc):  # once per reason, not every look
                self._failed[channel] = str(exc)
                log.warning("watch: the answer to the close of channel %s… was refused: %s (its fee is paid by %s)",
                            channel.hex()[:16], exc, self.info()["address"])
            self._recheck.add(channel)  # tried again on the next look, while the challenge runs
            return None
        self._failed.pop(channel, None)
        self._sent[channel] = tx.hash
        with self._lock:
            self._conn.execute("UPDATE watched SET answer = ? WHERE channel = ?", (tx.hash, channel))
        self.answers.append({"channel": channel.hex(), "closing": closing, "amount": amount, "tx": tx.hash.hex()})
        log.info("watch: answered the close of channel %s… (it named %d) with the cheque of %d: tx %s",
                 channel.hex()[:16], closing, amount, tx.hash.hex()[:16])
        self._recheck.add(channel)  # looked at again until the chain shows it answered
        return tx

    def _finish(self, channel: bytes) -> None:
        with self._lock:
            self.watched.pop(channel, None)
            self._conn.execute("UPDATE watched SET done = 1 WHERE channel = ?", (channel,))


async def run_watch(service: WatchService, clock: Callable[[], int], interval: float = INTERVAL) -> None:
    """The node's task: look for closes to answer every ``interval`` seconds, until cancelled."""
    while True:
        try:
            await asyncio.to_thread(service.step, clock())
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001 - a bug here must not stop the node; logged, tried again
            log.exception("watch: a look at the chain failed")
        await asyncio.sleep(interval)


def add_watch_routes(app: Any, service: WatchService) -> None:
    from fastapi.responses import JSONResponse

    @app.post("/watch", summary="Hand over a channel's latest cheque; the node answers a renter's close with it")
    async def watch(request: Request) -> JSONResponse:
        from hub.net.jsonstrict import JsonError
        from hub.net.jsonstrict import loads as json_loads

        body = b""
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_BODY:
                return JSONResponse({"error": "too_large", "message": f"body: larger than {MAX_BODY} bytes; one "
                                     "cheque per request"}, status_code=413)
        try:
            data = json_loads(body)
        except (JsonError, ValueError) as exc:
            return JSONResponse({"error": "invalid_request", "message": f"body: not JSON: {exc}"}, status_code=422)
        try:
            answer = await asyncio.to_thread(service.hand_over, data)
        except WatchRefused as exc:
            return JSONResponse({"error": exc.reason, "message": exc.message}, status_code=STATUS[exc.reason])
        return JSONResponse(answer)

    @app.get("/watch", summary="The watch service: its key's address (fund it for fees), what it watches")
    async def watch_info() -> dict:
        return await asyncio.to_thread(service.info)

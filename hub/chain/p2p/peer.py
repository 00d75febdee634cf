"""One connection to another node: its frames in, a bounded queue of frames out, and its score.

Sending never waits for the peer: frames go into a bounded queue that a writer task empties. A peer
that lets the queue fill is too slow to keep up and is disconnected, so one stalled socket cannot
hold back block production or gossip to everyone else.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from hub.chain.deadline import within
from hub.chain.p2p import limits
from hub.chain.p2p.frames import encode_frame, read_frame
from hub.chain.p2p.seen import SeenSet

log = logging.getLogger("hub.chain.p2p")


class Peer:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, outbound: bool,
                 address: str, max_frame: int = limits.MAX_FRAME_BYTES, queue_size: int = limits.SEND_QUEUE) -> None:
        self.reader = reader
        self.writer = writer
        self.outbound = outbound
        self.address = address  # the dialled host:port, or the remote socket address of an inbound peer
        remote = writer.get_extra_info("peername")
        self.ip = remote[0] if isinstance(remote, tuple) and remote else address.rpartition(":")[0]
        self.connected_at = time.monotonic()
        self.producer_key: bytes | None = None  # a producer key the peer proved in its auth
        self.good_blocks = 0  # blocks from it that extended or switched our chain: why it is worth a slot
        self.pending = False  # an inbound connection still in its handshake (counted by the network)
        self.ping_nonce = 0
        self.ping_due = 0.0  # monotonic time of the next ping
        self.ping_sent = 0.0  # monotonic time of the unanswered ping, 0 when none is outstanding
        self.sync_late = False  # a get_blocks to it timed out: its late answer is still welcome
        self.max_frame = max_frame
        self.score = limits.SCORE_START
        self.node_key: bytes | None = None
        self.height = 0  # the best height the peer has told us about
        self.syncing = False  # a get_blocks to this peer is outstanding
        self.sync_start = 1  # the height that get_blocks asked from
        self.sync_sent = 0.0  # monotonic time it was sent, to give up on a peer that never answers
        self.closed = asyncio.Event()
        self.close_reason = ""
        # Transactions this peer is known to have (it sent them, or we did): not sent to it again.
        self.known_txs = SeenSet(limits.PEER_KNOWN_TXS)
        self._queue: asyncio.Queue[bytes] = asyncio.Queue(queue_size)
        self._queued_bytes = 0
        self._writer_task: asyncio.Task | None = None

    @property
    def name(self) -> str:
        key = self.node_key.hex()[:8] if self.node_key else "?"
        return f"{key}@{self.address}"

    def start(self) -> None:
        self._writer_task = asyncio.create_task(self._write_loop(), name=f"p2p-write-{self.address}")

    def send(self, message: dict[str, Any]) -> bool:
        """Queue a message; False (and the peer is closed) when its queue is full."""
        if self.closed.is_set():
            return False
        try:
            frame = encode_frame(message, self.max_frame)
        except ValueError as exc:
            log.warning("p2p: not sending to %s: %s", self.name, exc)
            return False
        return self.send_frame(frame)

    def send_frame(self, frame: bytes) -> bool:
        """Queue a frame ``encode_frame`` made (one encoding for many peers); as :meth:`send`."""
        if self.closed.is_set():
            return False
        if self._queued_bytes + len(frame) > limits.SEND_QUEUE_BYTES:
            self.close(f"too slow: {self._queued_bytes:,} bytes waiting")
            return False
        try:
            self._queue.put_nowait(frame)
        except asyncio.QueueFull:
            self.close(f"too slow: {self._queue.maxsize} frames waiting")
            return False
        self._queued_bytes += len(frame)
        return True

    async def send_direct(self, message: dict[str, Any]) -> None:
        """Write before the writer task runs (the handshake)."""
        self.writer.write(encode_frame(message, self.max_frame))
        await within(self.writer.drain(), limits.WRITE_TIMEOUT)

    async def receive(self, max_bytes: int | None = None) -> dict[str, Any] | None:
        return await read_frame(self.reader, max_bytes or self.max_frame)

    def penalise(self, cost: int, why: str) -> bool:
        """Lower the score; True when it fell to the drop threshold (the caller bans and closes)."""
        self.score -= cost
        log.warning("p2p: peer %s: %s (score %d)", self.name, why, self.score)
        return self.score <= limits.SCORE_DROP

    async def _write_loop(self) -> None:
        try:
            while True:
                frame = await self._queue.get()
                self._queued_bytes -= len(frame)
                self.writer.write(frame)
                await within(self.writer.drain(), limits.WRITE_TIMEOUT)
        except asyncio.CancelledError:
            pass
        except (OSError, asyncio.TimeoutError, ConnectionError) as exc:
            self.close(f"write failed: {exc!r}")

    def close(self, reason: str = "") -> None:
        if self.closed.is_set():
            return
        self.close_reason = reason
        self.closed.set()
        if self._writer_task is not None and self._writer_task is not asyncio.current_task():
            self._writer_task.cancel()
        try:
            self.writer.close()
        except Exception:  # noqa: BLE001 - the transport may already be gone
            pass

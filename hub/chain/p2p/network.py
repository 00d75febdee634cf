"""The network of one node: listen, dial, handshake, sync, gossip, and keep bad peers out.

Only two things a peer sends can change this node: a block that ``ChainNode.receive_block`` accepts
and a transaction that ``ChainNode.submit`` admits. Everything else is bookkeeping about the peer
(its height, its score). A peer whose data the node refuses loses score and, at the threshold, is
disconnected and not accepted or redialled until its ban ends. Every handler catches what it can
raise, so a peer can end its own connection but never the node.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from hub.chain.deadline import within
from hub.chain.node.node import ChainNode
from hub.chain.p2p import limits, messages
from hub.chain.p2p.addresses import normal_address, parse_address
from hub.chain.p2p.control import PeerControl, PeerLimitError
from hub.chain.p2p.frames import FrameError, encode_frame
from hub.chain.p2p.messages import BadMessage, Hello
from hub.chain.p2p.peer import Peer
from hub.chain.p2p.peerslots import SlotLimits
from hub.chain.p2p.seen import SeenSet
from hub.chain.p2p.sync import Sync
from hub.chain.p2p.txgossip import TxGossip
from hub.chain.protocol import dpos
from hub.chain.protocol.block import Block, BlockFormatError
from hub.chain.protocol.errors import BlockRejected, ParentUnknown
from hub.crypto.keys import PrivateKey

log = logging.getLogger("hub.chain.p2p")

def wall_clock_ms() -> int:
    return time.time_ns() // 1_000_000


__all__ = ["Network", "PeerLimitError", "parse_address", "wall_clock_ms"]


class Network(PeerControl, Sync, TxGossip):
    """One node's network; its parts by purpose: peer slots and runtime control (control.py),
    block sync (sync.py), transaction gossip (txgossip.py), and here connections, handshakes,
    scores, block relay and maintenance."""

    def __init__(self, node: ChainNode, identity: PrivateKey, *, listen: tuple[str, int] | None = None,
                 peers: list[str] | tuple[str, ...] = (), clock: Callable[[], int] = wall_clock_ms,
                 sync_batch: int = limits.SYNC_BATCH, slots: SlotLimits | None = None,
                 sync_timeout: float = limits.SYNC_TIMEOUT, ping_interval: float = limits.PING_SECONDS,
                 ping_timeout: float = limits.PING_TIMEOUT,
                 handshake_timeout: float = limits.HANDSHAKE_TIMEOUT) -> None:
        self.node = node
        self.identity = identity  # the node key: signs the handshake challenge, never anything on chain
        self.node_key = identity.public_key
        self.listen = listen
        self.slots = slots or SlotLimits()
        self.peer_addresses = [normal_address(p) for p in peers]
        if len(set(self.peer_addresses)) > self.slots.max_outbound:
            raise PeerLimitError(f"{len(set(self.peer_addresses))} peers to dial, but at most "
                                 f"{self.slots.max_outbound} outbound peers are allowed (max_outbound)")
        self.peer_addresses = list(dict.fromkeys(self.peer_addresses))
        self.sync_timeout = sync_timeout
        self.ping_interval = ping_interval
        self.ping_timeout = ping_timeout
        self.handshake_timeout = handshake_timeout
        self._pending: dict[str, int] = {}  # remote IP -> inbound connections still in their handshake
        self._ping_nonce = 0
        self.clock = clock
        self.sync_batch = min(sync_batch, limits.SYNC_BATCH)  # what we ask for; what we serve is capped by limits
        self.chain_id = node.genesis.chain_id
        self.genesis_hash = node.genesis.hash
        self.network = node.genesis.network  # what the auth signature is bound to
        self.max_frame = limits.frame_limit(node.constants.MAX_BLOCK_BYTES)
        self.peers: dict[bytes, Peer] = {}
        self.bans: dict[str, float] = {}  # node key hex or dialled address -> monotonic end of ban
        self.seen_blocks = SeenSet(limits.SEEN_LIMIT)
        # Hashes of announced blocks' bytes: each block comes from every peer that relays it, and
        # a copy seen before is dropped before it is decoded (~1 ms for a block of 2,000 transfers).
        self.seen_block_bytes = SeenSet(limits.SEEN_BLOCK_BYTES)
        self.seen_txs = SeenSet(limits.SEEN_LIMIT)
        self._address_keys: dict[str, bytes] = {}  # dialled address -> node key it answered with
        self._sync_peer: Peer | None = None
        self._sync_logged = 0
        self._tx_outbox: list[tuple[bytes, bytes, Peer | None]] = []  # (raw, hash, the peer it came from)
        self._tx_flush: asyncio.TimerHandle | None = None
        self._server: asyncio.base_events.Server | None = None
        self._tasks: set[asyncio.Task] = set()
        # Blocks (received and produced) and gossiped transactions each get their own thread, so a
        # block never waits in a queue behind transaction batches; ChainNode.block_work makes
        # admission pause while one is handled. Transactions wait in a queue of their own instead
        # of in the peer's read loop, so the block a peer sends after them is read at once.
        self._block_thread = ThreadPoolExecutor(1, thread_name_prefix="p2p-blocks")
        self._tx_thread = ThreadPoolExecutor(1, thread_name_prefix="p2p-txs")
        self._tx_queue: deque[tuple[Peer, list[bytes], list[bytes]]] = deque()  # (peer, raws, hashes)
        self._tx_queued = 0
        self._tx_queued_bytes = 0
        self._tx_wake = asyncio.Event()

    # --- life cycle ------------------------------------------------------------------------------
    @property
    def port(self) -> int | None:
        if self._server is None or not self._server.sockets:
            return None
        return self._server.sockets[0].getsockname()[1]

    async def start(self) -> None:
        if self.listen is not None:
            self._server = await asyncio.start_server(self._accept, self.listen[0], self.listen[1],
                                                      limit=limits.INBOUND_READ_AHEAD)
            log.info("p2p: listening on %s:%d (chain %s, genesis %s, node key %s)", self.listen[0], self.port,
                     self.chain_id, self.genesis_hash.hex()[:16], self.node_key.hex()[:16])
        for address in self.peer_addresses:
            self._spawn(self._dial_loop(address), f"p2p-dial-{address}")
        self._spawn(self._maintain(), "p2p-maintain")
        self._spawn(self._admit_txs(), "p2p-admit-txs")

    @property
    def admission(self) -> ThreadPoolExecutor:
        """The thread gossiped transactions are admitted on; the RPC admits its own there too."""
        return self._tx_thread

    async def in_block_thread(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Run block work (receiving, producing) on the thread reserved for it."""
        return await asyncio.get_running_loop().run_in_executor(self._block_thread, fn, *args)

    async def stop(self) -> None:
        if self._tx_flush is not None:
            self._tx_flush.cancel()
            self._tx_flush = None
        if self._server is not None:
            self._server.close()
        for peer in list(self.peers.values()):
            peer.close("node stopping")
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        # Whatever a worker is doing with the node finishes before the caller may close its store.
        for pool in (self._block_thread, self._tx_thread):
            await asyncio.to_thread(pool.shutdown, True, cancel_futures=True)
        if self._server is not None:
            try:
                await asyncio.wait_for(self._server.wait_closed(), 2)
            except (asyncio.TimeoutError, Exception):  # noqa: BLE001 - shutting down anyway
                pass

    def _spawn(self, coro: Any, name: str) -> None:
        task = asyncio.create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # --- connections -----------------------------------------------------------------------------
    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        remote = writer.get_extra_info("peername")
        address = f"{remote[0]}:{remote[1]}" if remote else "?"
        peer = Peer(reader, writer, outbound=False, address=address, max_frame=self.max_frame)
        # Before anything is read: a stranger's connections cost a slot here until their handshake
        # ends, and there are only so many (250 once took a node from 65 MB to 1.4 GB).
        pending = self._pending.get(peer.ip, 0)
        if sum(self._pending.values()) >= limits.PENDING_HANDSHAKES or pending >= limits.PENDING_PER_ADDRESS:
            log.debug("p2p: refusing %s: too many handshakes under way", address)
            peer.close("too many handshakes under way")
            return
        self._pending[peer.ip] = pending + 1
        peer.pending = True
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        try:
            await self._serve(peer)
        except asyncio.CancelledError:
            # End normally: asyncio's stream callback (3.11) calls task.exception() on this task,
            # which raises, and logs an error, when the task ends cancelled.
            pass

    async def _dial_loop(self, address: str) -> None:
        host, port = parse_address(address)
        while True:
            known = self._address_keys.get(address)
            if self._banned(address) or (known is not None and known in self.peers):
                await asyncio.sleep(limits.REDIAL_SECONDS)
                continue
            try:
                reader, writer = await within(asyncio.open_connection(host, port, limit=2 * limits.MIB),
                                                        limits.HANDSHAKE_TIMEOUT)
            except (OSError, asyncio.TimeoutError) as exc:
                log.debug("p2p: cannot reach %s: %s", address, exc)
            else:
                await self._serve(Peer(reader, writer, outbound=True, address=address, max_frame=self.max_frame))
            await asyncio.sleep(limits.REDIAL_SECONDS)

    async def _serve(self, peer: Peer) -> None:
        registered = False
        try:
            registered = await self._handshake(peer)
            if not registered:
                return
            peer.start()
            log.info("p2p: peer %s connected (%s, height %d); %d peer(s)", peer.name,
                     "outbound" if peer.outbound else "inbound", peer.height, len(self.peers))
            self._maybe_sync()
            while not peer.closed.is_set():
                try:
                    message = await peer.receive()
                except FrameError as exc:
                    if peer.closed.is_set():
                        break  # we closed it (evicted, no pong, stopping): its half frame is not its fault
                    if self._penalise(peer, limits.COST_FATAL if exc.fatal else limits.COST_GARBAGE, str(exc)) or exc.fatal:
                        break
                    continue
                if message is None:
                    break
                try:
                    await self._dispatch(peer, message)
                except BadMessage as exc:
                    if self._penalise(peer, limits.COST_GARBAGE, str(exc)):
                        break
        except (OSError, ConnectionError, asyncio.TimeoutError) as exc:
            peer.close(f"connection: {exc!r}")
        except asyncio.CancelledError:
            peer.close("node stopping")
            raise
        except Exception:  # noqa: BLE001 - a peer must never take the node down
            log.exception("p2p: handling peer %s failed", peer.name)
        finally:
            peer.close(peer.close_reason or "disconnected")
            if registered and self.peers.get(peer.node_key) is peer:
                del self.peers[peer.node_key]
                log.info("p2p: peer %s disconnected (%s); %d peer(s)", peer.name, peer.close_reason, len(self.peers))
            if self._sync_peer is peer:
                self._sync_peer = None

    async def _handshake(self, peer: Peer) -> bool:
        """Hellos both ways, then each side signs the other's fresh nonce with the node key it
        named: a peer is registered under a key only once it has proved it holds it. The whole
        exchange has one deadline and small frames, so a stranger holds little for long."""
        try:
            return await self._handshake_steps(peer)
        finally:
            if peer.pending:
                peer.pending = False
                left = self._pending.get(peer.ip, 1) - 1
                if left > 0:
                    self._pending[peer.ip] = left
                else:
                    self._pending.pop(peer.ip, None)

    async def _handshake_steps(self, peer: Peer) -> bool:
        head = self.node.head
        challenge = os.urandom(messages.NONCE_BYTES)
        small = limits.HANDSHAKE_FRAME_BYTES
        try:
            async with asyncio.timeout(self.handshake_timeout):
                await peer.send_direct(messages.hello(self.chain_id, self.genesis_hash, head.height, head.hash,
                                                      self.node_key, challenge))
                message = await peer.receive(small)
                if message is None:
                    peer.close("closed during the handshake")
                    return False
                hello = messages.parse_hello(message)
                refusal = self.check_hello(hello)
                if refusal:
                    level = logging.DEBUG if refusal == "ourselves" else logging.WARNING
                    log.log(level, "p2p: refusing %s: %s", peer.address, refusal)
                    peer.close(refusal)
                    return False
                await peer.send_direct(messages.auth(self.identity, self.network, hello.nonce, self.node.key))
                message = await peer.receive(small)
                if message is None:
                    peer.close("closed during the handshake")
                    return False
                producer = messages.check_auth(message, self.network, challenge, hello.node_key)
        except (FrameError, BadMessage, TimeoutError) as exc:
            # Debug for a stranger (hundreds of them must not flood the log), a warning for a
            # peer we dialled: that is the operator's configuration failing.
            log.log(logging.WARNING if peer.outbound else logging.DEBUG, "p2p: handshake with %s failed: %s",
                    peer.address, exc or f"not done within {self.handshake_timeout:.0f} s")
            peer.close("bad handshake")
            return False
        peer.node_key, peer.height, peer.producer_key = hello.node_key, hello.height, producer
        if peer.outbound:
            self._address_keys[peer.address] = hello.node_key
        existing = self.peers.get(hello.node_key)
        if existing is not None and not existing.closed.is_set():
            # Both sides dialled each other: both keep the connection whose dialler has the lower
            # key, so they agree on which one to close without talking about it.
            if self._dialler(existing) <= self._dialler(peer):
                log.debug("p2p: %s already connected", peer.name)
                peer.close("duplicate connection")
                return False
            existing.close("duplicate connection")
        else:
            refusal = self._make_room(peer)
            if refusal:
                log.debug("p2p: refusing %s: %s", peer.name, refusal)
                peer.close(refusal)
                return False
        peer.ping_due = time.monotonic() + self.ping_interval
        self.peers[hello.node_key] = peer
        return True

    def check_hello(self, hello: Hello) -> str | None:
        """Why a peer's hello is refused, or None: another chain, ourselves, or a banned node."""
        if hello.version != messages.PROTOCOL_VERSION:
            return f"protocol version {hello.version}, this node speaks {messages.PROTOCOL_VERSION}"
        if hello.chain_id != self.chain_id:
            return f"another chain: {hello.chain_id!r}, this node follows {self.chain_id!r}"
        if hello.genesis != self.genesis_hash:
            return f"another genesis: {hello.genesis.hex()[:16]}, this node's is {self.genesis_hash.hex()[:16]}"
        if hello.node_key == self.node_key:
            return "ourselves"
        if self._banned(hello.node_key.hex()):
            return "banned for misbehaviour"
        return None

    def _dialler(self, peer: Peer) -> bytes:
        return self.node_key if peer.outbound else peer.node_key

    # --- scores and bans -------------------------------------------------------------------------
    def _penalise(self, peer: Peer, cost: int, why: str) -> bool:
        """Score the peer down; when it reaches the threshold, ban and disconnect it (True)."""
        if not peer.penalise(cost, why):
            return False
        until = time.monotonic() + limits.BAN_SECONDS
        if peer.node_key is not None:
            self.bans[peer.node_key.hex()] = until
        if peer.outbound:
            self.bans[peer.address] = until
        log.warning("p2p: dropping peer %s for %.0f s: %s", peer.name, limits.BAN_SECONDS, why)
        peer.close(f"banned: {why}")
        return True

    def _banned(self, what: str) -> bool:
        until = self.bans.get(what)
        if until is None:
            return False
        if until <= time.monotonic():
            del self.bans[what]
            return False
        return True

    # --- messages --------------------------------------------------------------------------------
    async def _dispatch(self, peer: Peer, message: dict[str, Any]) -> None:
        kind = message["type"]
        if kind == "announce_block":
            await self._receive_blocks(peer, [messages.parse_announce_block(message)], announced=True)
        elif kind == "announce_txs":
            await self._receive_txs(peer, *messages.parse_announce_txs(message))
        elif kind == "announce_tx":
            await self._receive_txs(peer, [messages.parse_announce_tx(message)])
        elif kind == "blocks":
            raw_blocks, height = messages.parse_blocks(message)
            await self._receive_batch(peer, raw_blocks, height)
        elif kind == "get_blocks":
            start, count = messages.parse_range(message, limits.SYNC_BATCH)
            raw, height = await asyncio.to_thread(self._read_blocks, start, count)
            peer.send(messages.blocks(raw, height))
        elif kind == "get_headers":
            start, count = messages.parse_range(message, limits.MAX_HEADERS)
            peer.send(messages.headers(await asyncio.to_thread(self._read_headers, start, count)))
        elif kind == "headers":
            messages.parse_headers(message)  # a full node does not ask for headers; accepted and ignored
        elif kind == "ping":
            peer.send(messages.pong(messages.parse_nonce(message)))
        elif kind == "pong":
            if messages.parse_nonce(message) == peer.ping_nonce and peer.ping_sent:
                peer.ping_sent = 0.0
                peer.ping_due = time.monotonic() + self.ping_interval
        else:
            self._penalise(peer, limits.COST_UNKNOWN_TYPE, f"unknown message type {kind!r}")

    def _read_blocks(self, start: int, count: int) -> tuple[list[bytes], int]:
        """Canonical blocks from ``start``, as many as fit one frame (at least one)."""
        out: list[bytes] = []
        size = 0
        with self.node.lock:
            head = self.node.head.height
            for height in range(max(start, 1), min(head, max(start, 1) + count - 1) + 1):
                block = self.node.store.canonical_block(height)
                if block is None:
                    break
                raw = block.encode()
                if out and size + len(raw) + 64 > self.max_frame - 1024:
                    break
                out.append(raw)
                size += len(raw) + 8
        return out, head

    def _read_headers(self, start: int, count: int) -> list[bytes]:
        with self.node.lock:
            head = self.node.head.height
            out = []
            for height in range(max(start, 1), min(head, max(start, 1) + count - 1) + 1):
                header = self.node.store.canonical_header(height)
                if header is None:
                    break
                out.append(header.encode())
        return out

    # --- blocks ----------------------------------------------------------------------------------
    async def _receive_blocks(self, peer: Peer, raw_blocks: list[bytes], *, announced: bool) -> str:
        """Feed blocks to the node in order; returns "ok", "gap" (a parent is missing: a fetch of
        the range was asked for) or "bad" (the peer was scored down)."""
        with self.node.block_work():
            return await self._receive_blocks_first(peer, raw_blocks, announced=announced)

    async def _receive_blocks_first(self, peer: Peer, raw_blocks: list[bytes], *, announced: bool) -> str:
        for raw in raw_blocks:
            raw_id = hashlib.sha256(raw).digest() if announced else b""
            if announced and raw_id in self.seen_block_bytes:
                continue
            try:
                block = Block.decode(raw)
            except BlockFormatError as exc:
                self._penalise(peer, limits.COST_INVALID_BLOCK, f"malformed block: {exc}")
                return "bad"
            h = block.header
            if announced:
                self.seen_block_bytes.add(raw_id)
                if not self.seen_blocks.add(block.hash):
                    continue
            now = self.clock()
            if announced:
                self.node.clock_watch.observe(h.timestamp, now)  # is our clock right? (warns once)
            if dpos.slot_time(h.slot, self.node.state.genesis_time, self.node.constants) > now + limits.MAX_CLOCK_AHEAD_MS:
                self.seen_blocks.discard(block.hash)  # welcome again once its slot has come
                self.seen_block_bytes.discard(raw_id)
                self._penalise(peer, limits.COST_FUTURE_BLOCK, f"block {h.height} is for slot {h.slot}, which has not started")
                return "bad"
            await self._watch(h, now)
            # Marked seen above, so copies from other peers wait for this verdict; only a block
            # proven invalid stays marked. One that failed for a passing reason (its parent not
            # here yet, a full disk) is forgotten, so a later announcement of it is taken again.
            try:
                if not await self.in_block_thread(self._parent_known, block):
                    raise ParentUnknown("unknown parent")
                result = await self.in_block_thread(self.node.receive_block, block)
            except ParentUnknown:
                self.seen_blocks.discard(block.hash)
                self.seen_block_bytes.discard(raw_id)
                if announced:
                    self._request_blocks(peer, self._gap_start(h.height), target=h.height)
                return "gap"
            except BlockRejected as exc:
                self._penalise(peer, limits.COST_INVALID_BLOCK, f"block {h.height} {block.hash.hex()[:12]} refused: {exc}")
                return "bad"
            except Exception:  # noqa: BLE001 - e.g. a full disk: not the peer's fault, and not fatal here
                self.seen_blocks.discard(block.hash)
                self.seen_block_bytes.discard(raw_id)
                log.exception("p2p: storing block %d from %s failed", h.height, peer.name)
                return "bad"
            peer.height = max(peer.height, h.height)  # only a block we accepted says how far the peer is
            if result.status in ("applied", "reorganised"):
                peer.good_blocks += 1
                self.seen_blocks.add(block.hash)
                if announced or self._sync_peer is None:
                    log.info("p2p: block %d (slot %d, %d txs) from %s %s; head %d", h.height, h.slot, len(block.txs),
                             peer.name, result.status, result.head.height)
                self._broadcast(messages.announce_block(raw), exclude=peer)
        return "ok"

    async def _watch(self, header, now: int) -> None:
        """Show every recent header to the equivocation watch; gossip the evidence it yields."""
        c = self.node.constants
        if dpos.slot_at(now, self.node.state.genesis_time, c) - header.slot > 2 * c.PRODUCERS:
            return  # old (a sync batch): no thread hop per block
        try:
            evidence = await self.in_block_thread(self.node.observe, header, now)
        except Exception:  # noqa: BLE001 - e.g. a full disk; watching must not end the connection
            log.exception("p2p: checking block %d for equivocation failed", header.height)
            return
        if evidence is not None:
            self.announce_tx(evidence.raw)

    def _parent_known(self, block: Block) -> bool:
        prev = block.header.prev_hash
        if prev == self.genesis_hash:
            return True
        with self.node.lock:
            return self.node.store.has_block(prev)

    def _frame(self, message: dict[str, Any]) -> bytes:
        try:
            return encode_frame(message, self.max_frame)
        except ValueError as exc:
            log.warning("p2p: not sending %s: %s", message.get("type"), exc)
            return b""

    # --- our own news ----------------------------------------------------------------------------
    def announce_block(self, block: Block) -> None:
        self.seen_blocks.add(block.hash)
        self._broadcast(messages.announce_block(block.encode()))

    def _broadcast(self, message: dict[str, Any], exclude: Peer | None = None) -> None:
        frame = self._frame(message)  # once, not once per peer (a block's frame is up to a few MB)
        if not frame:
            return
        for peer in list(self.peers.values()):
            if peer is not exclude:
                peer.send_frame(frame)

    async def _maintain(self) -> None:
        """Pick a sync peer if one is ahead (and give up on one that does not answer); ping each
        peer now and then and drop the ones that do not answer in time, so a dead or wedged link
        does not hold a slot."""
        tick = min(1.0, self.sync_timeout / 4, self.ping_timeout / 4)
        while True:
            await asyncio.sleep(tick)
            try:
                self._maybe_sync()
                self._ping_peers(time.monotonic())
                self._forget_old_bans()
            except Exception:  # noqa: BLE001
                log.exception("p2p: maintenance failed")

    def _forget_old_bans(self) -> None:
        """Ended bans go: a key is only looked up again if it comes back, and strangers banned
        under fresh keys never do, so their entries would otherwise pile up for good."""
        now = time.monotonic()
        for name in [n for n, until in self.bans.items() if until <= now]:
            del self.bans[name]

    def _ping_peers(self, now: float) -> None:
        for peer in list(self.peers.values()):
            if peer.ping_sent:
                if now - peer.ping_sent > self.ping_timeout:
                    log.warning("p2p: dropping peer %s: no pong within %g s", peer.name, self.ping_timeout)
                    peer.close(f"no pong within {self.ping_timeout:g} s")
            elif now >= peer.ping_due:
                self._ping_nonce += 1
                peer.ping_nonce, peer.ping_sent = self._ping_nonce, now
                peer.send(messages.ping(self._ping_nonce))

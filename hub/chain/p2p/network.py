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
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from hub.chain.deadline import within
from hub.chain.node.node import ChainNode
from hub.chain.p2p import limits, messages
from hub.chain.p2p.frames import FrameError, encode_frame
from hub.chain.p2p.messages import BadMessage, Hello
from hub.chain.p2p.peer import Peer
from hub.chain.p2p.seen import SeenSet
from hub.chain.protocol import dpos
from hub.chain.protocol.block import Block, BlockFormatError
from hub.chain.protocol.errors import BlockRejected, Reason, TxRejected
from hub.crypto.keys import PrivateKey

log = logging.getLogger("hub.chain.p2p")

#: Transaction refusals that prove the sender relayed junk (not just a race on nonces or fees).
_MALFORMED_TX = {Reason.BAD_ENCODING, Reason.TOO_LARGE, Reason.UNKNOWN_TYPE, Reason.BAD_PAYLOAD, Reason.BAD_SIGNATURE}


def parse_address(text: str) -> tuple[str, int]:
    host, sep, port = text.strip().rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) < 65536:
        raise ValueError(f"{text!r} is not HOST:PORT")
    return host.strip("[]"), int(port)


def wall_clock_ms() -> int:
    return time.time_ns() // 1_000_000


def _chunks(raws: list[bytes]) -> list[list[bytes]]:
    """``announce_txs`` frames: at most TX_BATCH transactions and TX_BATCH_BYTES each (512 of the
    largest transactions would not fit a frame)."""
    if len(raws) <= limits.TX_BATCH and sum(map(len, raws)) <= limits.TX_BATCH_BYTES:
        return [raws] if raws else []  # the usual case: one frame, no Python loop per transaction
    out: list[list[bytes]] = []
    size = limits.TX_BATCH_BYTES
    for raw in raws:
        if size + len(raw) > limits.TX_BATCH_BYTES or len(out[-1]) >= limits.TX_BATCH:
            out.append([])
            size = 0
        out[-1].append(raw)
        size += len(raw)
    return out


def _unincluded(raws: list[bytes], hashes: list[bytes], included: Callable[[bytes], bool]) -> tuple[list, list]:
    keep = [i for i, tx_hash in enumerate(hashes) if not included(tx_hash)]
    if len(keep) == len(raws):
        return raws, hashes
    return [raws[i] for i in keep], [hashes[i] for i in keep]


class Network:
    def __init__(self, node: ChainNode, identity: PrivateKey, *, listen: tuple[str, int] | None = None,
                 peers: list[str] | tuple[str, ...] = (), clock: Callable[[], int] = wall_clock_ms,
                 sync_batch: int = limits.SYNC_BATCH) -> None:
        self.node = node
        self.identity = identity  # the node key: signs the handshake challenge, never anything on chain
        self.node_key = identity.public_key
        self.listen = listen
        self.peer_addresses = list(peers)
        self.clock = clock
        self.sync_batch = min(sync_batch, limits.SYNC_BATCH)  # what we ask for; what we serve is capped by limits
        self.chain_id = node.genesis.chain_id
        self.genesis_hash = node.genesis.hash
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
                                                      limit=2 * limits.MIB)
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
        if len(self.peers) >= limits.MAX_PEERS:
            peer.close("too many peers")
            return
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
        named: a peer is registered under a key only once it has proved it holds it."""
        head = self.node.head
        challenge = os.urandom(messages.NONCE_BYTES)
        await peer.send_direct(messages.hello(self.chain_id, self.genesis_hash, head.height, head.hash,
                                              self.node_key, challenge))
        try:
            message = await within(peer.receive(), limits.HANDSHAKE_TIMEOUT)
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
            await peer.send_direct(messages.auth(self.identity, self.chain_id, hello.nonce))
            message = await within(peer.receive(), limits.HANDSHAKE_TIMEOUT)
            if message is None:
                peer.close("closed during the handshake")
                return False
            messages.check_auth(message, self.chain_id, challenge, hello.node_key)
        except (FrameError, BadMessage, asyncio.TimeoutError) as exc:
            log.warning("p2p: handshake with %s failed: %s", peer.address, exc or "timeout")
            peer.close("bad handshake")
            return False
        peer.node_key, peer.height = hello.node_key, hello.height
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
        elif len(self.peers) >= limits.MAX_PEERS:
            peer.close("too many peers")
            return False
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
            messages.parse_nonce(message)
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
            if not await self.in_block_thread(self._parent_known, block):
                if announced:
                    self._request_blocks(peer, self._gap_start(h.height), target=h.height)
                return "gap"
            try:
                result = await self.in_block_thread(self.node.receive_block, block)
            except BlockRejected as exc:
                self._penalise(peer, limits.COST_INVALID_BLOCK, f"block {h.height} {block.hash.hex()[:12]} refused: {exc}")
                return "bad"
            except Exception:  # noqa: BLE001 - e.g. a full disk: not the peer's fault, and not fatal here
                log.exception("p2p: storing block %d from %s failed", h.height, peer.name)
                return "bad"
            peer.height = max(peer.height, h.height)  # only a block we accepted says how far the peer is
            if result.status in ("applied", "reorganised"):
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

    def _gap_start(self, height: int) -> int:
        """Where to ask from when a block at ``height`` has an unknown parent: just above our head
        if it is ahead of us, else far enough back to find the fork point."""
        ours = self.node.head.height
        if height > ours + 1:
            return ours + 1
        return max(self.node.lib + 1, height - 8)

    def _request_blocks(self, peer: Peer, start: int, *, target: int) -> None:
        if peer.syncing or peer.closed.is_set():
            return
        peer.syncing = True
        peer.sync_start = start
        peer.sync_sent = time.monotonic()
        peer.height = max(peer.height, target)
        peer.send(messages.get_blocks(start, self.sync_batch))

    async def _receive_batch(self, peer: Peer, raw_blocks: list[bytes], height: int) -> None:
        if not peer.syncing:
            self._penalise(peer, limits.COST_UNKNOWN_TYPE, "blocks nobody asked for")
            return
        peer.syncing = False
        start = peer.sync_start
        if not raw_blocks and height >= start:
            # It claimed to have blocks from ``start`` and sent none: believe the reply, not the claim.
            self._penalise(peer, limits.COST_UNKNOWN_TYPE, f"no blocks from {start} although its head is {height}")
            peer.height = min(height, start - 1)
            self._end_sync(peer)
            return
        peer.height = height
        outcome = await self._receive_blocks(peer, raw_blocks, announced=False)
        if outcome == "bad":
            self._end_sync(peer)
            return
        if outcome == "gap":
            # The batch does not connect: step back (doubling) towards the last irreversible block.
            back = max(8, 2 * (self.node.head.height + 1 - start))
            earlier = max(self.node.lib + 1, start - back)
            if earlier >= start:
                self._penalise(peer, limits.COST_INVALID_BLOCK, "its chain does not connect above our last irreversible block")
                self._end_sync(peer)
                return
            self._request_blocks(peer, earlier, target=height)
            return
        ours = self.node.head.height
        if raw_blocks and self._sync_peer is peer and (len(raw_blocks) >= 10 or ours >= height):
            if ours >= height or time.monotonic() - self._sync_logged > 1:
                log.info("p2p: synced %s/%s blocks from %s", f"{ours:,}", f"{height:,}", peer.name)
                self._sync_logged = time.monotonic()
        if raw_blocks and start + len(raw_blocks) <= height:
            self._request_blocks(peer, start + len(raw_blocks), target=height)
        else:
            self._end_sync(peer)

    def _end_sync(self, peer: Peer) -> None:
        if self._sync_peer is peer:
            self._sync_peer = None
        self._maybe_sync()

    def _maybe_sync(self) -> None:
        """Sync in batches from the peer with the highest head, when it is ahead of us."""
        current = self._sync_peer
        if current is not None and not current.closed.is_set():
            if not (current.syncing and time.monotonic() - current.sync_sent > limits.SYNC_TIMEOUT):
                return
            log.warning("p2p: %s did not answer get_blocks within %.0f s", current.name, limits.SYNC_TIMEOUT)
            current.syncing = False
        self._sync_peer = None
        ours = self.node.head.height
        candidates = [p for p in self.peers.values() if not p.closed.is_set() and p.height > ours]
        if not candidates:
            return
        best = max(candidates, key=lambda p: p.height)
        self._sync_peer = best
        if best.height - ours >= 10:
            log.info("p2p: syncing from %s: %s blocks behind", best.name, f"{best.height - ours:,}")
        self._request_blocks(best, ours + 1, target=best.height)

    # --- transactions ----------------------------------------------------------------------------
    async def _receive_txs(self, peer: Peer, raws: list[bytes], also: Sequence[bytes] = ()) -> None:
        """Queue the new ones for admission; when the queue is full, forget them instead (they
        are gossip: another copy, or the block that includes them, will come). ``also``: peers
        the sender says it sent the same frame to, which are therefore not sent them by us."""
        sha256 = hashlib.sha256
        all_hashes = [sha256(raw).digest() for raw in raws]
        included = self.node.recently_included
        peer.known_txs.update(all_hashes)
        for node_key in also:
            other = self.peers.get(node_key)
            if other is not None and other is not peer:
                other.known_txs.update(all_hashes)
        fresh, hashes = [], []
        for raw, tx_hash, new in zip(raws, all_hashes, self.seen_txs.add_many(all_hashes)):
            if new and not included(tx_hash):
                fresh.append(raw)
                hashes.append(tx_hash)
        if not fresh:
            return
        size = sum(map(len, fresh))
        if self._tx_queued + len(fresh) > limits.TX_QUEUE or self._tx_queued_bytes + size > limits.TX_QUEUE_BYTES:
            for tx_hash in hashes:
                self.seen_txs.discard(tx_hash)
            log.debug("p2p: %d transaction(s) from %s not queued: %d already wait for admission",
                      len(fresh), peer.name, self._tx_queued)
            return
        self._tx_queue.append((peer, fresh, hashes))
        self._tx_queued += len(fresh)
        self._tx_queued_bytes += size
        self._tx_wake.set()

    async def _admit_txs(self) -> None:
        """Admit queued gossip in arrival order (a sender's nonces arrive in order), several
        frames per thread hop."""
        while True:
            await self._tx_wake.wait()
            self._tx_wake.clear()
            while self._tx_queue:
                try:
                    await self._admit_queued()
                except Exception:  # noqa: BLE001 - this loop must outlive any one batch
                    log.exception("p2p: admitting gossiped transactions failed")

    async def _admit_queued(self) -> None:
        """One thread hop: up to TX_ADMIT_BATCH queued transactions, then their verdicts."""
        batches = []
        count = 0
        while self._tx_queue and count < limits.TX_ADMIT_BATCH:
            batch = self._tx_queue.popleft()
            batches.append(batch)
            count += len(batch[1])
        raws = [raw for _, fresh, _ in batches for raw in fresh]
        self._tx_queued -= count
        self._tx_queued_bytes -= sum(map(len, raws))
        # What a block included while it waited is dropped here, unread.
        included = self.node.recently_included
        batches = [(peer, *_unincluded(fresh, hashes, included)) for peer, fresh, hashes in batches]
        raws = [raw for _, fresh, _ in batches for raw in fresh]
        if not raws:
            return
        try:
            results = await asyncio.get_running_loop().run_in_executor(
                self._tx_thread, self.node.submit_many, raws, self.clock())
        except Exception:  # e.g. a store error: these are lost (welcome again), the node goes on
            for _, _, hashes in batches:
                for tx_hash in hashes:
                    self.seen_txs.discard(tx_hash)
            raise
        position = 0
        for peer, fresh, hashes in batches:
            self._judge_txs(peer, fresh, hashes, results[position:position + len(fresh)])
            position += len(fresh)

    def _judge_txs(self, peer: Peer, fresh: list[bytes], hashes: list[bytes], results: list) -> None:
        malformed = 0
        admitted = []
        for raw, tx_hash, result in zip(fresh, hashes, results):
            if isinstance(result, TxRejected):
                if result.reason in _MALFORMED_TX:
                    malformed += 1
                    why = str(result)
                else:
                    log.debug("p2p: transaction from %s not admitted: %s", peer.name, result)
            else:
                admitted.append((raw, tx_hash, peer))
        self._queue_txs(admitted)
        if malformed:  # also when the peer has gone meanwhile: the ban keeps it from coming back
            # One bad batch costs what its transactions would have cost one by one, up to a drop.
            self._penalise(peer, min(limits.SCORE_START, malformed * limits.COST_INVALID_TX),
                           f"{malformed} invalid transaction(s), e.g. {why}")

    def _queue_txs(self, items: list[tuple[bytes, bytes, Peer | None]]) -> None:
        """Gossip (raw, hash, source) in batches: flush when a batch is full or TX_FLUSH_SECONDS
        after the first."""
        if not items:
            return
        self._tx_outbox.extend(items)
        if len(self._tx_outbox) >= limits.TX_BATCH:
            self._flush_txs()
        elif self._tx_flush is None:
            self._tx_flush = asyncio.get_running_loop().call_later(limits.TX_FLUSH_SECONDS, self._flush_txs)

    def _flush_txs(self) -> None:
        if self._tx_flush is not None:
            self._tx_flush.cancel()
            self._tx_flush = None
        batch, self._tx_outbox = self._tx_outbox, []
        if not batch:
            return
        # Per peer, what it lacks: not what came from it, nor what it sent us or another peer
        # told us it was sent meanwhile (without this, every node relayed every transaction to
        # every other, n - 2 redundant copies each in a full mesh).
        everything: list[Peer] = []
        hashes = [tx_hash for _, tx_hash, _ in batch]
        for peer in list(self.peers.values()):
            known = peer.known_txs
            lacking = known.lacking(hashes)  # in a full mesh, after a relay: usually none
            new = [(raw, tx_hash) for raw, tx_hash, source in batch if source is not peer and tx_hash in lacking] \
                if lacking else []
            known.update([tx_hash for _, tx_hash in new])
            if len(new) == len(batch):
                everything.append(peer)
            else:
                for chunk in _chunks([raw for raw, _ in new]):
                    peer.send(messages.announce_txs(chunk))
        if everything:
            # One encoding for all the peers that lack the whole batch, naming them all.
            also = [peer.node_key for peer in everything if peer.node_key is not None]
            for chunk in _chunks([raw for raw, _, _ in batch]):
                frame = self._frame(messages.announce_txs(chunk, also if len(also) > 1 else ()))
                if frame:
                    for peer in everything:
                        peer.send_frame(frame)

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

    def announce_tx(self, raw: bytes, tx_hash: bytes | None = None) -> None:
        """Gossip a transaction this node admitted (from its RPC, its CLI inbox, or evidence);
        ``tx_hash``, when the caller has it, saves hashing the bytes again."""
        tx_hash = tx_hash or hashlib.sha256(raw).digest()
        self.seen_txs.add(tx_hash)
        self._queue_txs([(raw, tx_hash, None)])

    def _broadcast(self, message: dict[str, Any], exclude: Peer | None = None) -> None:
        frame = self._frame(message)  # once, not once per peer (a block's frame is up to a few MB)
        if not frame:
            return
        for peer in list(self.peers.values()):
            if peer is not exclude:
                peer.send_frame(frame)

    async def _maintain(self) -> None:
        """Once a second: pick a sync peer if one is ahead; now and then ping so dead links close."""
        tick = 0
        while True:
            await asyncio.sleep(1.0)
            tick += 1
            try:
                self._maybe_sync()
                if tick % 15 == 0:
                    for peer in list(self.peers.values()):
                        peer.send(messages.ping(tick))
            except Exception:  # noqa: BLE001
                log.exception("p2p: maintenance failed")

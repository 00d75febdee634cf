"""The ``hub chain node`` process: a ChainNode, its network, its slot loop and (when present) RPC.

Everything runs on one event loop; the node's blocking work goes through worker threads. SIGTERM
and SIGINT set one event, and shutdown runs in reverse order of start-up so the store is closed
last, after nothing can write to it any more.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import shutil
import signal
import time
from dataclasses import dataclass
from pathlib import Path

from hub.chain.p2p import limits

log = logging.getLogger("hub.chain.node")
NODE_KEY_FILE = "node.key"
GRACEFUL_RPC_STOP = 3.0  # seconds (within the node's stop deadline)


class NodeSetupError(RuntimeError):
    """The node cannot start (genesis, data directory, key); the message says what to fix."""


@dataclass
class NodeOptions:
    genesis: Path
    data: Path
    listen: str
    peers: list[str]
    producer_key: Path | None = None
    rpc: str | None = None
    max_inbound: int = limits.MAX_INBOUND
    max_outbound: int = limits.MAX_OUTBOUND
    max_per_address: int = limits.MAX_PER_ADDRESS


def open_node(opts: NodeOptions):
    """Load the genesis, prepare the data directory and open the ChainNode.

    The genesis is copied to ``DATA/genesis.json`` so ``hub chain ... --chain-dir DATA`` reads and
    queues transactions for this node like it does for the embedded chain; a data directory that
    already holds another chain is refused.
    """
    from hub.chain.node.files import GENESIS_FILE, KeyFileError, read_key, write_key
    from hub.chain.node.node import ChainError, ChainNode
    from hub.chain.protocol.genesis import GenesisError, load_genesis
    from hub.crypto.keys import PrivateKey

    try:
        genesis = load_genesis(opts.genesis)
    except GenesisError as exc:
        raise NodeSetupError(str(exc)) from None
    opts.data.mkdir(parents=True, exist_ok=True)
    copy = opts.data / GENESIS_FILE
    if not copy.exists():
        shutil.copyfile(opts.genesis, copy)
    else:
        try:
            if load_genesis(copy).hash != genesis.hash:
                raise NodeSetupError(f"{opts.data} belongs to another chain ({copy} differs from {opts.genesis})")
        except GenesisError as exc:
            raise NodeSetupError(str(exc)) from None
    key = None
    if opts.producer_key is not None:
        try:
            key = read_key(opts.producer_key)
        except KeyFileError as exc:
            raise NodeSetupError(str(exc)) from None
        if key.public_key.hex() not in genesis.producers:
            log.warning("node: %s is not a genesis producer; it produces once elected", opts.producer_key)
    node_key_path = opts.data / NODE_KEY_FILE
    if not node_key_path.exists():
        write_key(node_key_path, PrivateKey.generate())
    try:
        node_key = read_key(node_key_path)
        node = ChainNode(opts.data, genesis, key)
    except (KeyFileError, ChainError) as exc:
        raise NodeSetupError(str(exc)) from None
    return node, node_key


def _rpc_server(node, network, address: str):
    """A uvicorn server for the node's RPC app, or None when the RPC module is not there yet.
    Transactions it admits are handed to the network to gossip."""
    try:
        from hub.chain.node.rpc import create_rpc_app
    except ImportError as exc:
        log.warning("node: RPC unavailable (%s); running without it", exc)
        return None
    import uvicorn

    from hub.chain.p2p.network import parse_address

    from hub.chain.node.rpc.admin import ensure_admin_token
    from hub.net import lograte
    from hub.net.httpguard import connection_cap, uvicorn_limits

    host, port = parse_address(address)
    app = create_rpc_app(node, on_submit=lambda tx: network.announce_tx(tx.raw, tx.hash), admit_executor=network.admission,
                         network=network, admin_token=ensure_admin_token(node.directory))
    from hub.chain.node.watch import WatchService, add_watch_routes  # answers closes for payees away

    watch = WatchService(node, node.directory, announce=lambda tx: network.announce_tx(tx.raw, tx.hash))
    add_watch_routes(app, watch)
    # Head and body timeouts, a connection cap below the file limit, rate-limited log lines: a
    # flood of idle sockets once stopped the RPC and wrote 142 MB of log in 20 s.
    config = uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan="on",
                            **uvicorn_limits(max_connections=connection_cap()))
    lograte.install()
    server = uvicorn.Server(config)
    # The node owns SIGTERM/SIGINT: uvicorn must neither take them (capture_signals, uvicorn >= 0.29;
    # install_signal_handlers before) nor raise them again once it has stopped.
    server.capture_signals = contextlib.nullcontext  # type: ignore[method-assign]
    server.install_signal_handlers = lambda: None  # type: ignore[method-assign]
    server.watch = watch  # type: ignore[attr-defined]
    return server


#: Allocations between two passes of the cyclic collector's youngest generation (CPython: 700).
GC_YOUNG_THRESHOLD = 20_000


def _tune_gc() -> None:
    """What start-up built (modules, the genesis, the state) lives as long as the process, so it is
    frozen out of the collector's passes; and the youngest generation is collected less often.
    Why: a block of 2,000 transfers allocates some 100,000 objects, nearly all freed by reference
    counting, yet every 700 of them started a pass: ~4 % of a node's CPU under load (5.9 against
    1.4 µs per transfer in one process, 260 passes against 6 for 20,000 transfers)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(GC_YOUNG_THRESHOLD, 20, 20)


async def serve(opts: NodeOptions) -> None:
    from hub.chain.node.lifecycle import stop_within
    from hub.chain.p2p.network import Network, parse_address
    from hub.chain.p2p.peerslots import SlotLimits
    from hub.chain.p2p.slots import run_slots

    listen = parse_address(opts.listen)
    for p in opts.peers:
        parse_address(p)
    node, node_key = await asyncio.to_thread(open_node, opts)
    _tune_gc()
    head = node.head
    log.info("node: chain %s, head %d (%s), last irreversible %d, %s", node.genesis.chain_id, head.height,
             head.hash.hex()[:16], node.lib, f"producer {node.key.public_key.hex()[:16]}" if node.key else "not producing")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    network = Network(node, node_key, listen=listen, peers=opts.peers,
                      slots=SlotLimits(opts.max_inbound, opts.max_outbound, opts.max_per_address))
    tasks: list[asyncio.Task] = []
    rpc = None
    try:
        await network.start()
        tasks.append(asyncio.create_task(run_slots(node, network), name="slots"))
        if opts.rpc:
            rpc = _rpc_server(node, network, opts.rpc)
            if rpc is not None:
                tasks.append(asyncio.create_task(rpc.serve(), name="rpc"))
                from hub.chain.node.watch import run_watch

                tasks.append(asyncio.create_task(run_watch(rpc.watch, lambda: time.time_ns() // 1_000_000),
                                                 name="watch"))
                log.info("node: RPC on http://%s", opts.rpc)
        waiter = asyncio.create_task(stop.wait())
        done, _ = await asyncio.wait([waiter, *tasks], return_when=asyncio.FIRST_COMPLETED)
        for task in done:
            if task is not waiter and task.exception() is not None:
                log.error("node: %s stopped: %r", task.get_name(), task.exception())
        waiter.cancel()
        log.info("node: stopping")
    finally:
        await stop_within(_stop(node, network, rpc, tasks))


async def _stop(node, network, rpc, tasks: list[asyncio.Task]) -> None:
    """Reverse order of start-up; ``stop_within`` bounds it (hub/chain/node/lifecycle.py)."""
    if rpc is not None:
        rpc.config.app.state.stop_streams()  # an open /stream would hold uvicorn's shutdown forever
        rpc.config.timeout_graceful_shutdown = GRACEFUL_RPC_STOP  # then requests still running are closed
        rpc.should_exit = True
    for task in tasks:
        if task.get_name() != "rpc":
            task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    await network.stop()
    if rpc is not None:
        rpc.watch.close()
    await asyncio.to_thread(node.close)
    log.info("node: stopped at head %d", node.head.height)

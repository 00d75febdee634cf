"""Checking a received block's signatures on every core before ``apply_block`` runs.

``apply_block`` is single-threaded and pure; signature checks are the bulk of its cost and do not
depend on order, so the shell checks the signatures of a block's unknown transactions in parallel
first (libsodium runs with the GIL released) and hands ``apply_block`` the cache. The verdicts are
the same as ``apply_block``'s own check would give; only the wall time changes.

The transactions it decodes on the way are handed on too: under load most of a block's
transactions reach a node in the block before their gossip is admitted, and decoding each one a
second time in ``apply_block`` cost as much as a fifth of receiving the block.
"""

from __future__ import annotations

import hashlib
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from hub.chain.protocol.errors import TxRejected
from hub.chain.protocol.tx import Transaction
from hub.crypto import keys
from hub.crypto.signing import Network

MIN_PARALLEL = 256  # below this, threads cost more than they save
_pool: ThreadPoolExecutor | None = None


def _executor() -> ThreadPoolExecutor:
    global _pool
    if _pool is None:
        _pool = ThreadPoolExecutor(max_workers=max(1, min(8, os.cpu_count() or 1)), thread_name_prefix="chain-verify")
    return _pool


def _check_chunk(chunk: list[tuple[bytes, bytes, bytes, bytes]]) -> list[bytes]:
    return [h for h, pk, msg, sig in chunk if keys.verify(pk, msg, sig)]


@dataclass
class Checked:
    valid: list[bytes] = field(default_factory=list)  # hashes of those whose signatures verify
    decoded: dict[bytes, Transaction] = field(default_factory=dict)  # what was decoded, by wire bytes


def preverify(raws: tuple[bytes, ...] | list[bytes], network: Network, known: "set[bytes] | dict", workers: int | None = None) -> Checked:
    """Check the signatures of the transactions in ``raws`` not in ``known``; undecodable ones are
    skipped (``apply_block`` will reject them with their reason)."""
    out = Checked()
    todo = []
    for raw in raws:
        if hashlib.sha256(raw).digest() in known:  # a transaction's hash is that of its wire bytes
            continue
        try:
            tx = Transaction.from_bytes(raw)
        except TxRejected:
            continue
        out.decoded[raw] = tx
        todo.append((tx.hash, tx.sender, tx.signing_bytes(network), tx.signature))
    if len(todo) < MIN_PARALLEL:
        out.valid = _check_chunk(todo)
        return out
    n = workers or _executor()._max_workers
    size = -(-len(todo) // n)
    chunks = [todo[i:i + size] for i in range(0, len(todo), size)]
    out.valid = [h for part in _executor().map(_check_chunk, chunks) for h in part]
    return out

"""Checking a received block's signatures on every core before ``apply_block`` runs.

``apply_block`` is single-threaded and pure; signature checks are the bulk of its cost and do not
depend on order, so the shell checks the signatures of a block's unknown transactions in parallel
first (libsodium runs with the GIL released) and hands ``apply_block`` the cache. The verdicts are
the same as ``apply_block``'s own check would give; only the wall time changes.
"""

from __future__ import annotations

import hashlib
import os
from concurrent.futures import ThreadPoolExecutor

from hub.chain.protocol.errors import TxRejected
from hub.chain.protocol.tx import Transaction
from hub.crypto import keys

MIN_PARALLEL = 256  # below this, threads cost more than they save
_pool: ThreadPoolExecutor | None = None


def _executor() -> ThreadPoolExecutor:
    global _pool
    if _pool is None:
        _pool = ThreadPoolExecutor(max_workers=max(1, min(8, os.cpu_count() or 1)), thread_name_prefix="chain-verify")
    return _pool


def _check_chunk(chunk: list[tuple[bytes, bytes, bytes, bytes]]) -> list[bytes]:
    return [h for h, pk, msg, sig in chunk if keys.verify(pk, msg, sig)]


def preverify(raws: tuple[bytes, ...] | list[bytes], chain_id: str, known: "set[bytes] | dict", workers: int | None = None) -> list[bytes]:
    """Hashes of the transactions in ``raws`` whose signatures verify, checking only those not in
    ``known``; undecodable ones are skipped (``apply_block`` will reject them with their reason)."""
    todo = []
    for raw in raws:
        if hashlib.sha256(raw).digest() in known:  # a transaction's hash is that of its wire bytes
            continue
        try:
            tx = Transaction.from_bytes(raw)
        except TxRejected:
            continue
        if tx.hash not in known:
            todo.append((tx.hash, tx.sender, tx.signing_bytes(chain_id), tx.signature))
    if len(todo) < MIN_PARALLEL:
        return _check_chunk(todo)
    n = workers or _executor()._max_workers
    size = -(-len(todo) // n)
    chunks = [todo[i:i + size] for i in range(0, len(todo), size)]
    return [h for part in _executor().map(_check_chunk, chunks) for h in part]

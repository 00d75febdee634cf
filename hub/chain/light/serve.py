"""What a full node serves a light client beyond headers: schedule proofs.

A schedule proof for a round's last block is the deterministic-CBOR list of that block's sorted
state changes ``[[namespace, key, new value or null], ...]``, the exact bytes its state hash
commits to. A node keeps them for round ends as it commits them (``changes`` table); for other
blocks, and round ends stored before it did, they are rebuilt from undo records (old values):
the keys are those of the block's undo record, and each key's value after the block is the old value
in the first later undo record (on the head chain) that touches it, or else its current value.
Cost: the undo records from the block to the head, so a node serves recent round ends cheaply
(the light client needs the one before its head's round; older ones only when it catches up).
"""

from __future__ import annotations

from typing import Any

from hub.crypto.encoding import encode


def changes_proof(node: Any, height: int) -> bytes | None:
    """The encoded change list of the head chain's block at ``height`` (None if there is none)."""
    with node.lock:
        block_hash = node.store.canonical_hash(height)
        if block_hash is None or height == 0:
            return None
        kept = node.store.changes(block_hash)  # round ends since the node keeps them
        if kept is not None:
            return kept
        keys = [(ns, _freeze(key)) for ns, key, _old in node.store.undo_record(block_hash)]
        after: dict[tuple[str, Any], Any] = {}
        pending = set(keys)
        for later in range(height + 1, node.head.height + 1):
            if not pending:
                break
            for ns, key, old in node.store.undo_record(node.store.canonical_hash(later)):
                k = (ns, _freeze(key))
                if k in pending:
                    after[k] = old
                    pending.discard(k)
        for k in pending:
            after[k] = node.state.get(k[0], k[1])
        return encode([[ns, key, after[(ns, key)]] for ns, key in keys])


def _freeze(value: Any) -> Any:
    return tuple(_freeze(v) for v in value) if isinstance(value, list) else value

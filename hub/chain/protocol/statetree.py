"""The state root: a bucket tree over the whole ledger, updated per block along the changed paths.

Why a bucket tree (docs/chain.md, "The state root", has the measurements): every state entry
``(namespace, key, value)`` falls in one of ``2**BUCKET_BITS`` buckets by the first bits of
SHA-256(CBOR ``[namespace, key]``); a bucket's leaf hash covers its entries sorted by key; a
complete binary Merkle tree of ``BUCKET_BITS`` levels sits over the buckets. A block that changes
n keys rehashes at most n buckets and their paths (not the ledger), a proof is a bucket's entries
plus ``BUCKET_BITS`` sibling hashes, and absence is shown by the same proof (the key's bucket,
complete, without it). A sparse Merkle tree over 256-bit key hashes would need ~20-256 hashes per
changed key in Python; this needs one leaf hash per changed bucket and one node hash per changed
inner node.

Encodings (everything deterministic CBOR, ``hub.crypto.encoding``):

- key bytes ``K = CBOR([namespace, key])``; bucket ``= int(SHA-256(K)[:4]) >> (32 - BUCKET_BITS)``
- entry bytes ``E = CBOR([namespace, key, value])`` (absent keys have no entry)
- leaf (bucket) hash ``SHA-256(0x00 ‖ E1 ‖ E2 ‖ ...)``, entries sorted by their bytes (which sorts
  them by K: CBOR items are prefix-free); the empty bucket is ``SHA-256(0x00)``
- node hash ``SHA-256(0x01 ‖ left ‖ right)`` (RFC 6962's prefixes, so a leaf never passes for a node)

Consensus code: the root depends only on the set of entries, never on the order of updates or on
dict order (buckets are sorted when hashed; inner nodes are functions of their children).
"""

from __future__ import annotations

import hashlib
from typing import Any

from cbor2 import dumps as _dumps

from hub.crypto.encoding import DecodeError, decode, encode

BUCKET_BITS = 16
HASH_SIZE = 32
_LEAF, _NODE = b"\x00", b"\x01"
_sha = hashlib.sha256


def key_bytes(ns: str, key: Any) -> bytes:
    return encode([ns, key])


def bucket_of(kbytes: bytes) -> int:
    return int.from_bytes(_sha(kbytes).digest()[:4], "big") >> (32 - BUCKET_BITS)


def leaf_hash(entries: list[bytes]) -> bytes:
    """``entries`` already sorted."""
    return _sha(_LEAF + b"".join(entries)).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return _sha(_NODE + left + right).digest()


def _empty_hashes() -> list[bytes]:
    """``out[d]``: the hash of an empty subtree whose root is at depth ``d`` (depth 0 is the root,
    depth ``BUCKET_BITS`` a bucket)."""
    out = [leaf_hash([])]
    for _ in range(BUCKET_BITS):
        out.append(node_hash(out[-1], out[-1]))
    return out[::-1]


EMPTY = _empty_hashes()
EMPTY_ROOT = EMPTY[0]


class StateProofError(ValueError):
    """A state proof that does not show what it claims; the message says which check failed."""


class StateTree:
    """The bucket tree of one :class:`~hub.chain.protocol.state.State`; only that state changes it.

    Sparse: buckets and inner nodes that are empty are absent (their hash is ``EMPTY[depth]``), so a
    devnet's few hundred keys cost a few hundred paths, and a copy of a small state is cheap.
    Updates are recorded by :meth:`put` and hashed in one pass by :meth:`root` (a block's changed
    buckets share their upper paths)."""

    __slots__ = ("_buckets", "_nodes", "_dirty")

    def __init__(self) -> None:
        self._buckets: dict[int, dict[bytes, bytes]] = {}  # bucket -> key bytes -> entry bytes
        self._nodes: list[dict[int, bytes]] = [{} for _ in range(BUCKET_BITS + 1)]  # per depth: index -> hash
        self._dirty: set[int] = set()

    def __deepcopy__(self, memo: dict) -> "StateTree":
        # Every stored object is immutable bytes: copying the containers is a true copy.
        self.root()
        copy = StateTree()
        copy._buckets = {b: dict(d) for b, d in self._buckets.items()}
        copy._nodes = [dict(level) for level in self._nodes]
        return copy

    def put(self, ns: str, key: Any, value: Any) -> None:
        """Set ``(ns, key)`` to ``value`` (None: remove it). Hashed at the next :meth:`root`."""
        self.update(((ns, key, value),))

    def update(self, changes: Any) -> None:
        """:meth:`put` for each ``(ns, key, value)``, written out: a block's 10,000 changes, with
        the rehash, took half the time without the helper calls (145 -> 73 ms)."""
        buckets, dirty, sha, shift = self._buckets, self._dirty, _sha, 32 - BUCKET_BITS
        from_bytes = int.from_bytes
        for ns, key, value in changes:
            kb = _dumps([ns, key], canonical=True)  # the entry is the same array with one more item
            b = from_bytes(sha(kb).digest()[:4], "big") >> shift
            bucket = buckets.get(b)
            if value is None:
                if bucket is None or bucket.pop(kb, None) is None:
                    continue
            elif bucket is None:
                buckets[b] = {kb: b"\x83" + kb[1:] + _dumps(value, canonical=True)}
            else:
                bucket[kb] = b"\x83" + kb[1:] + _dumps(value, canonical=True)
            dirty.add(b)

    def root(self) -> bytes:
        dirty = self._dirty
        if dirty:
            self._dirty = set()
            self._rehash(dirty)
        return self._nodes[0].get(0, EMPTY_ROOT)

    def _rehash(self, dirty: set[int]) -> None:
        buckets, nodes = self._buckets, self._nodes
        leaves = nodes[BUCKET_BITS]
        for b in dirty:
            bucket = buckets.get(b)
            if bucket:
                leaves[b] = leaf_hash(sorted(bucket.values()))
            else:
                buckets.pop(b, None)
                leaves.pop(b, None)
        sha, node = _sha, _NODE
        for depth in range(BUCKET_BITS - 1, -1, -1):
            dirty = {i >> 1 for i in dirty}
            below, here, empty = nodes[depth + 1], nodes[depth], EMPTY[depth + 1]
            get = below.get
            for i in dirty:
                left, right = get(2 * i), get(2 * i + 1)
                if left is None and right is None:
                    here.pop(i, None)
                else:
                    here[i] = sha(node + (left or empty) + (right or empty)).digest()

    def prove(self, ns: str, key: Any) -> dict[str, Any]:
        """Proof of the value of ``(ns, key)``, or of its absence, against :meth:`root`:
        ``{"bucket": int, "entries": [entry bytes, sorted], "path": [sibling hashes, bucket first]}``."""
        self.root()
        b = bucket_of(key_bytes(ns, key))
        path, index = [], b
        for depth in range(BUCKET_BITS, 0, -1):
            path.append(self._nodes[depth].get(index ^ 1, EMPTY[depth]))
            index >>= 1
        return {"bucket": b, "entries": sorted(self._buckets.get(b, {}).values()), "path": path}

    def __len__(self) -> int:
        return sum(len(b) for b in self._buckets.values())


def build(entries: Any) -> StateTree:
    """A tree from ``(ns, key, value)`` triples (a state restored from the store, or a test's
    from-scratch reference)."""
    tree = StateTree()
    tree.update(entries)
    tree.root()
    return tree


def verify(root: bytes, ns: str, key: Any, proof: Any) -> tuple[bool, Any]:
    """Check ``proof`` (the shape :meth:`StateTree.prove` gives; byte strings may be hex) for
    ``(ns, key)`` against ``root``: ``(True, value)`` if the key is present (value as the state
    holds it, arrays as tuples), ``(False, None)`` if the proof shows it absent. Raises
    :class:`StateProofError` otherwise."""
    if not isinstance(proof, dict):
        raise StateProofError("a state proof is a map of bucket, entries and path")
    b, entries, path = proof.get("bucket"), proof.get("entries"), proof.get("path")
    if not isinstance(b, int) or isinstance(b, bool) or not 0 <= b < 2**BUCKET_BITS:
        raise StateProofError(f"bucket must be an integer below {2**BUCKET_BITS}")
    if not isinstance(entries, list) or not isinstance(path, list) or len(path) != BUCKET_BITS:
        raise StateProofError(f"entries must be a list and path a list of {BUCKET_BITS} hashes")
    entries, path = [_bytes(e, "entry") for e in entries], [_bytes(p, "path hash") for p in path]
    if any(len(p) != HASH_SIZE for p in path):
        raise StateProofError(f"every path hash is {HASH_SIZE} bytes")
    try:
        kb = key_bytes(ns, key)
    except Exception as exc:  # noqa: BLE001 - cbor2 raises several kinds for an unencodable key
        raise StateProofError(f"the key cannot be encoded: {exc}") from None
    if bucket_of(kb) != b:
        raise StateProofError(f"the key is in bucket {bucket_of(kb)}, the proof is of bucket {b}")
    found, value, previous = False, None, b""
    for e in entries:
        try:
            item = decode(e)
        except DecodeError as exc:
            raise StateProofError(f"an entry is not deterministic CBOR: {exc}") from None
        if not isinstance(item, list) or len(item) != 3 or not isinstance(item[0], str) or item[2] is None:
            raise StateProofError("an entry is not [namespace, key, value]")
        if e <= previous:
            raise StateProofError("entries are not sorted, or one is repeated")
        previous = e
        ekb = key_bytes(item[0], item[1])
        if bucket_of(ekb) != b:
            raise StateProofError(f"an entry belongs to bucket {bucket_of(ekb)}, not {b}")
        if ekb == kb:
            found, value = True, _freeze(item[2])
    h, index = leaf_hash(entries), b
    for sibling in path:
        h = node_hash(sibling, h) if index & 1 else node_hash(h, sibling)
        index >>= 1
    if h != root:
        raise StateProofError("the proof does not lead to the state root")
    return found, value


def encode_proof(proof: dict[str, Any]) -> dict[str, Any]:
    """The JSON form of a proof: byte strings as hex."""
    return {"bucket": proof["bucket"], "entries": [e.hex() for e in proof["entries"]],
            "path": [p.hex() for p in proof["path"]]}


def _bytes(value: Any, what: str) -> bytes:
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        try:
            return bytes.fromhex(value)
        except ValueError:
            pass
    raise StateProofError(f"a {what} must be bytes or hex")


def _freeze(value: Any) -> Any:
    if isinstance(value, list):
        return tuple(_freeze(v) for v in value)
    return value

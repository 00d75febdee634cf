"""Merkle trees as RFC 6962 / RFC 9162 define them, so inclusion proofs are the standard ones.

Leaves are hashed as SHA-256(0x00 ‖ leaf) and nodes as SHA-256(0x01 ‖ left ‖ right): the prefixes
stop a leaf from being passed off as an inner node (the second-preimage attack on naive trees). The
tree of n leaves splits at the largest power of two below n; the empty tree's root is SHA-256("").
"""

from __future__ import annotations

import hashlib

_sha = hashlib.sha256


def leaf_hash(leaf: bytes) -> bytes:
    return _sha(b"\x00" + leaf).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return _sha(b"\x01" + left + right).digest()


def root(leaves: list[bytes]) -> bytes:
    """The Merkle tree hash of ``leaves`` (raw leaf bytes)."""
    if not leaves:
        return _sha(b"").digest()
    return root_of_hashes([leaf_hash(x) for x in leaves])


def root_of_hashes(level: list[bytes]) -> bytes:
    """Bottom-up form of RFC 6962's recursion: an odd last node is carried up unpaired, which gives
    the same tree as splitting at the largest power of two."""
    if not level:
        return _sha(b"").digest()
    while len(level) > 1:
        nxt = [node_hash(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            nxt.append(level[-1])
        level = nxt
    return level[0]


def inclusion_proof(leaves: list[bytes], index: int) -> list[bytes]:
    """The audit path of leaf ``index`` (RFC 6962 §2.1.1 PATH), from the leaf upwards."""
    if not 0 <= index < len(leaves):
        raise IndexError(f"leaf {index} is not in a tree of {len(leaves)}")
    return _path(index, [leaf_hash(x) for x in leaves])


def inclusion_proof_of_hashes(hashes: list[bytes], index: int) -> list[bytes]:
    """The same path from the leaves' hashes: what a log that keeps 32 bytes per entry (not the
    entries themselves, which it may have purged) can prove from."""
    if not 0 <= index < len(hashes):
        raise IndexError(f"leaf {index} is not in a tree of {len(hashes)}")
    return _path(index, hashes)


def _path(m: int, hashes: list[bytes]) -> list[bytes]:
    n = len(hashes)
    if n == 1:
        return []
    k = 1 << ((n - 1).bit_length() - 1)
    if m < k:
        return _path(m, hashes[:k]) + [root_of_hashes(hashes[k:])]
    return _path(m - k, hashes[k:]) + [root_of_hashes(hashes[:k])]


def verify_inclusion(leaf: bytes, index: int, size: int, proof: list[bytes], expected_root: bytes) -> bool:
    """RFC 9162 §2.1.3.2: does ``proof`` show ``leaf`` at ``index`` in the tree of ``size`` leaves?"""
    if not 0 <= index < size:
        return False
    fn, sn = index, size - 1
    r = leaf_hash(leaf)
    for p in proof:
        if not isinstance(p, bytes) or len(p) != 32 or sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == expected_root

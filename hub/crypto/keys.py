"""Ed25519 keys and the chain's signature validity rule.

The rule (a disagreement between nodes on one signature is a fork, so it is fixed here and pinned by
``tests/chain/test_ed25519_vectors.py`` over ``../shared/vectors``). A signature ``sig`` by public
key ``A`` on message ``M`` is valid if and only if:

1. ``A`` is exactly 32 bytes and ``sig`` exactly 64 bytes (``R`` = first 32, ``S`` = last 32);
2. ``S``, read little-endian, is below the group order L = 2^252 + 27742317777372353535851937790883648493;
3. ``A`` is a canonical encoding of a point on the curve and that point is not of small order;
4. ``R`` is not the encoding of a small-order point;
5. with k = SHA-512(R ‖ A ‖ M) mod L, the canonical encoding of [S]B − [k]A equals ``R`` byte for
   byte (the cofactorless equation; a non-canonical ``R`` can therefore never match).

This is libsodium's ``crypto_sign_verify_detached`` (>= 1.0.16, as bundled in PyNaCl >= 1.4).
Checks 1 and 2 are also made here, in Python, so a change of library cannot quietly relax them. On
the ed25519-speccheck cases the rule gives ``xxxVxxxxxxxx`` (only case 3 valid), and it agrees with
every Wycheproof verdict.
"""

from __future__ import annotations

import os

import nacl.bindings
import nacl.exceptions
import nacl.signing

PUBLIC_KEY_SIZE = 32
SIGNATURE_SIZE = 64
SEED_SIZE = 32
GROUP_ORDER = 2**252 + 27742317777372353535851937790883648493


def verify(public_key: bytes, message: bytes, signature: bytes) -> bool:
    """True when ``signature`` is valid under the rule above; never raises on bad input."""
    if not isinstance(public_key, bytes) or not isinstance(signature, bytes) or not isinstance(message, bytes):
        return False
    if len(public_key) != PUBLIC_KEY_SIZE or len(signature) != SIGNATURE_SIZE:
        return False
    if int.from_bytes(signature[32:], "little") >= GROUP_ORDER:
        return False
    try:
        nacl.bindings.crypto_sign_open(signature + message, public_key)
    except (nacl.exceptions.BadSignatureError, nacl.exceptions.ValueError, ValueError, TypeError):
        return False
    return True


class PrivateKey:
    """An Ed25519 key pair from its 32-byte seed (the secret that is stored and printed)."""

    __slots__ = ("_signing", "seed", "public_key")

    def __init__(self, seed: bytes) -> None:
        if not isinstance(seed, bytes) or len(seed) != SEED_SIZE:
            raise ValueError(f"an Ed25519 seed is {SEED_SIZE} bytes")
        self.seed = seed
        self._signing = nacl.signing.SigningKey(seed)
        self.public_key = bytes(self._signing.verify_key)

    @classmethod
    def generate(cls) -> "PrivateKey":
        return cls(os.urandom(SEED_SIZE))

    def sign(self, message: bytes) -> bytes:
        return self._signing.sign(message).signature

    def __repr__(self) -> str:  # never show the seed
        return f"<PrivateKey public={self.public_key.hex()[:16]}...>"

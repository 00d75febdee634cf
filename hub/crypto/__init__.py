"""Keys, signatures, addresses, deterministic encoding and Merkle proofs.

Shared by ``identity``, ``chain`` and ``market`` so that none of them reaches into another for these:
a signature or a hash computed by the hub must be byte-for-byte the one a chain node computes.
Import the submodules directly (``from hub.crypto import keys``); this package imports nothing so
that ``hub`` start-up does not pay for libsodium until something signs.
"""

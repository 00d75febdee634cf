"""Long-lived API tokens: generation, hashing and name rules.

Only ``sha256(token)`` is stored. A slow KDF (bcrypt, scrypt, argon2) exists to protect
low-entropy human passwords from offline guessing; these tokens are 32 random bytes from
:func:`secrets.token_urlsafe`, so a leaked hash cannot be brute-forced and a plain sha256 is
enough. Keeping it fast also matters: the hash is computed on every API request.
"""

from __future__ import annotations

import hashlib
import re
import secrets

#: Token names end up in logs, CLI tables and URLs; a conservative alphabet keeps them safe there.
NAME_RE = re.compile(r"[A-Za-z0-9_.@-]{1,64}")

#: Record ``last_used`` at most this often, so authenticating a busy client is not a write per request.
TOUCH_INTERVAL = 60.0

#: Anything longer is not one of our tokens; refuse it before hashing attacker-sized input.
MAX_TOKEN_LENGTH = 256

TOKEN_BYTES = 32


class TokenError(Exception):
    """A token could not be created: bad or duplicate name."""


def validate_name(name: object) -> str:
    if not isinstance(name, str) or not NAME_RE.fullmatch(name):
        raise TokenError(
            f"invalid token name {name!r}: use 1-64 characters from A-Z a-z 0-9 _ . @ -"
        )
    return name


def new_token() -> str:
    return secrets.token_urlsafe(TOKEN_BYTES)


def hash_token(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8")).digest()

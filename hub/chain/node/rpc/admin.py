"""The node's RPC admin token: ``DATA/rpc-admin.token``, made once with mode 0600, so whoever may
read the node's data directory (its operator) may change its peers, and nobody else who can reach
the RPC."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

ADMIN_TOKEN_FILE = "rpc-admin.token"


def ensure_admin_token(directory: Path) -> str:
    path = Path(directory) / ADMIN_TOKEN_FILE
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        token = path.read_text().strip()
        if token:
            return token
        path.unlink()  # empty: a crash between creating and writing it
        return ensure_admin_token(directory)
    token = secrets.token_urlsafe(32)
    with os.fdopen(fd, "w") as f:
        f.write(token + "\n")
    return token


__all__ = ["ADMIN_TOKEN_FILE", "ensure_admin_token"]

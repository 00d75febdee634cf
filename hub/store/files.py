"""The data directory is private to the hub's user.

It holds the owner token, the command log, the chain's signing keys: anything another local user
can read there is a credential lost. So the directory is 0700 and the files the hub creates in it
are 0600; a directory left looser by an older hub (which made it 0755 with hub.db 0644) is tightened
at start, with a log line, rather than trusted. The owner of a shared box who wants a group to read
the history can still loosen it by hand after each start; the default must be the safe one.
"""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

log = logging.getLogger(__name__)

DIR_MODE = 0o700
FILE_MODE = 0o600
#: Set by ``hub run`` for the whole process, so every file a plugin or the embedded chain creates
#: under the data directory (SQLite's -wal and -shm, run.json, keys) is private without each writer
#: having to remember it.
UMASK = 0o077


def private_dir(path: Path) -> Path:
    """Create ``path`` (and missing parents) as 0700, or tighten it to 0700 if group or others have
    any access. Returns ``path``."""
    path = Path(path)
    path.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
    tighten(path)
    return path


def private_file(path: Path) -> Path:
    """Create ``path`` empty as 0600 if it is missing, else tighten it: SQLite creates its -wal and
    -shm files with the database file's mode, so the database must be private before it is opened."""
    path = Path(path)
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE))
    except FileExistsError:
        tighten(path)
    return path


def tighten(path: Path) -> None:
    """Remove every group and other permission bit; a file we do not own (a root-owned directory the
    user pointed --data at) is left alone with a warning instead of failing the start."""
    current = stat.S_IMODE(os.stat(path).st_mode)
    if not current & 0o077:
        return
    try:
        os.chmod(path, current & ~0o077)
    except PermissionError as exc:
        log.warning("%s is readable by other users (mode %o) and cannot be tightened: %s", path, current, exc)
        return
    log.warning("%s was readable by other users (mode %o); tightened to %o", path, current, stat.S_IMODE(os.stat(path).st_mode))

"""The chain directory (``<data>/chain/``): ``genesis.json``, ``chain.db``, ``keys/*.key``.

Key files are JSON with the hex seed, written with mode 0600 like the hub's owner token: they are
the account. The embedded chain is created here on first start with a fresh producer key and an
``owner`` key holding the whole initial supply, so the CLI can send tokens at once.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from hub.chain.protocol.constants import RUFF
from hub.chain.protocol.genesis import Genesis, load_genesis
from hub.crypto.address import address_of, encode_address
from hub.crypto.keys import PrivateKey

GENESIS_FILE = "genesis.json"
KEYS_DIR = "keys"
EMBEDDED_CHAIN_ID = "ruff-embedded"  # + the producer key's first hex digits: two hubs never share a chain id
EMBEDDED_SUPPLY = 1_000_000 * RUFF


class KeyFileError(ValueError):
    """A key file that is missing or malformed; the message names the file."""


def write_key(path: Path, key: PrivateKey) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump({"type": "ed25519", "seed": key.seed.hex(), "public_key": key.public_key.hex(),
                   "address": encode_address(address_of(key.public_key))}, fh, indent=2)
        fh.write("\n")


def read_key(path: Path) -> PrivateKey:
    try:
        data = json.loads(Path(path).read_text())
        return PrivateKey(bytes.fromhex(data["seed"]))
    except FileNotFoundError:
        raise KeyFileError(f"no key file at {path} (make one with `hub chain keygen`)") from None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise KeyFileError(f"{path} is not a key file: {exc}") from None


def find_producer_key(chain_dir: Path, genesis: Genesis) -> PrivateKey | None:
    """The first key in ``keys/`` (by file name) that the genesis names as a producer."""
    producers = set(genesis.producers)
    for path in sorted((chain_dir / KEYS_DIR).glob("*.key")):
        try:
            key = read_key(path)
        except KeyFileError:
            continue
        if key.public_key.hex() in producers:
            return key
    return None


def ensure_embedded(chain_dir: Path, now_ms: int) -> Genesis:
    """Load ``genesis.json``, creating a one-producer devnet on first use."""
    path = chain_dir / GENESIS_FILE
    if path.exists():
        return load_genesis(path)
    producer, owner = PrivateKey.generate(), PrivateKey.generate()
    keys = chain_dir / KEYS_DIR
    write_key(keys / "producer.key", producer)
    write_key(keys / "owner.key", owner)
    genesis = Genesis(chain_id=f"{EMBEDDED_CHAIN_ID}-{producer.public_key.hex()[:8]}", genesis_time=now_ms - now_ms % 1000,
                      producers=[producer.public_key.hex()],
                      balances={encode_address(address_of(owner.public_key)): EMBEDDED_SUPPLY})
    tmp = path.with_suffix(".tmp")
    tmp.write_text(genesis.to_json())
    os.replace(tmp, path)
    return genesis

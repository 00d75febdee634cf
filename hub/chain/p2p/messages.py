"""The message types nodes exchange, and their shape checks.

Each parser takes a decoded frame map and returns a typed value or raises :class:`BadMessage`, so
the network code never indexes into a peer's map unchecked. Blocks and transactions travel as their
own wire bytes: the node decodes and judges them; here only the envelope is checked.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hub.chain.p2p.limits import MAX_HEADERS, MAX_PEERS, SYNC_BATCH, TX_BATCH
from hub.crypto import keys
from hub.crypto.signing import Network, signing_bytes

#: 2: the hello carries a challenge nonce and each side proves its node key with an ``auth`` message.
#: 3: ``announce_txs`` may name the other peers its frame went to (``also``); a version-2 node would
#: take that field for garbage and score the sender down, so the two refuse each other at the hello.
#: 4: every signature (auth, block, transaction) binds the genesis hash; a version-3 node's would not
#: verify, so the two refuse each other at the hello, naming the version, instead of at the auth.
#: Also in 4: ``auth`` may also prove a producer key (``producer``, ``producer_sig``), so a node keeps
#: a peer slot for a known producer that strangers with fresh keys cannot take.
PROTOCOL_VERSION = 4
AUTH_DOMAIN = "p2p-auth"
PRODUCER_DOMAIN = "p2p-producer"
NONCE_BYTES = 32
_U64 = 2**64


class BadMessage(ValueError):
    """A well-framed map that is not a valid message of its type."""


def _fields(msg: dict[str, Any], names: tuple[str, ...]) -> None:
    if sorted(msg) != sorted(("type", *names)):
        raise BadMessage(f"{msg.get('type')}: expected fields {', '.join(names)}")


def _uint(msg: dict[str, Any], name: str) -> int:
    v = msg[name]
    if not isinstance(v, int) or isinstance(v, bool) or not 0 <= v < _U64:
        raise BadMessage(f"{msg['type']}: {name} must be an unsigned 64-bit integer")
    return v


def _bytes(msg: dict[str, Any], name: str, size: int | None = None) -> bytes:
    v = msg[name]
    if not isinstance(v, bytes) or (size is not None and len(v) != size):
        raise BadMessage(f"{msg['type']}: {name} must be {size or 'some'} bytes")
    return v


_ONLY_BYTES = {bytes}


def _blob_list(msg: dict[str, Any], name: str, limit: int) -> list[bytes]:
    v = msg[name]
    # The exact type (what the CBOR decoder makes), checked at C speed: this runs for every
    # transaction of every gossip frame.
    if not isinstance(v, list) or len(v) > limit or (v and set(map(type, v)) != _ONLY_BYTES):
        raise BadMessage(f"{msg['type']}: {name} must be a list of at most {limit} byte strings")
    return v


@dataclass(frozen=True)
class Hello:
    version: int
    chain_id: str
    genesis: bytes
    height: int
    head: bytes
    node_key: bytes
    nonce: bytes = bytes(NONCE_BYTES)  # the challenge the other side signs in its ``auth``

    def to_msg(self) -> dict[str, Any]:
        return {"type": "hello", "version": self.version, "chain_id": self.chain_id, "genesis": self.genesis,
                "height": self.height, "head": self.head, "node_key": self.node_key, "nonce": self.nonce}


def hello(chain_id: str, genesis: bytes, height: int, head: bytes, node_key: bytes, nonce: bytes) -> dict[str, Any]:
    return Hello(PROTOCOL_VERSION, chain_id, genesis, height, head, node_key, nonce).to_msg()


def parse_hello(msg: dict[str, Any]) -> Hello:
    if msg.get("type") != "hello":
        raise BadMessage(f"expected hello first, got {msg.get('type')!r}")
    if msg.get("version") != PROTOCOL_VERSION and isinstance(msg.get("version"), int):
        # Another version may have other fields: report the version, which is what the operator can act on.
        raise BadMessage(f"protocol version {msg['version']}, this node speaks {PROTOCOL_VERSION}")
    _fields(msg, ("version", "chain_id", "genesis", "height", "head", "node_key", "nonce"))
    if not isinstance(msg["chain_id"], str) or len(msg["chain_id"]) > 128:
        raise BadMessage("hello: chain_id must be text of at most 128 characters")
    return Hello(_uint(msg, "version"), msg["chain_id"], _bytes(msg, "genesis", 32), _uint(msg, "height"),
                 _bytes(msg, "head", 32), _bytes(msg, "node_key", 32), _bytes(msg, "nonce", NONCE_BYTES))


def _auth_bytes(network: Network, challenge: bytes, node_key: bytes) -> bytes:
    return signing_bytes(AUTH_DOMAIN, network, {"nonce": challenge, "node_key": node_key})


def _producer_bytes(network: Network, challenge: bytes, node_key: bytes, producer: bytes) -> bytes:
    return signing_bytes(PRODUCER_DOMAIN, network, {"nonce": challenge, "node_key": node_key, "producer": producer})


def auth(identity: keys.PrivateKey, network: Network, challenge: bytes,
         producer: keys.PrivateKey | None = None) -> dict[str, Any]:
    """Proof that we hold the node key our hello named: its signature over the peer's fresh nonce.

    Without it any peer could claim another node's key, to push that node out as a "duplicate
    connection" or to get it banned for what the impostor sends. A producing node also signs the
    nonce and its node key with its producer key (its own domain, so the signature is good for
    nothing else): the peer then knows it talks to a producer, which a stranger cannot fake."""
    msg = {"type": "auth", "sig": identity.sign(_auth_bytes(network, challenge, identity.public_key))}
    if producer is not None:
        msg["producer"] = producer.public_key
        msg["producer_sig"] = producer.sign(_producer_bytes(network, challenge, identity.public_key,
                                                            producer.public_key))
    return msg


def check_auth(msg: dict[str, Any], network: Network, challenge: bytes, node_key: bytes) -> bytes | None:
    """Check the proof of ``node_key``; the producer key the peer also proved, or None."""
    if msg.get("type") != "auth":
        raise BadMessage(f"expected auth after hello, got {msg.get('type')!r}")
    _fields(msg, ("sig", "producer", "producer_sig") if "producer" in msg else ("sig",))
    if not keys.verify(node_key, _auth_bytes(network, challenge, node_key), _bytes(msg, "sig", 64)):
        raise BadMessage("auth: the signature does not prove the node key the hello named")
    if "producer" not in msg:
        return None
    producer = _bytes(msg, "producer", keys.PUBLIC_KEY_SIZE)
    if not keys.verify(producer, _producer_bytes(network, challenge, node_key, producer),
                       _bytes(msg, "producer_sig", 64)):
        raise BadMessage("auth: the producer signature does not prove the producer key it names")
    return producer


def get_blocks(start: int, count: int) -> dict[str, Any]:
    return {"type": "get_blocks", "from": start, "count": count}


def get_headers(start: int, count: int) -> dict[str, Any]:
    return {"type": "get_headers", "from": start, "count": count}


def parse_range(msg: dict[str, Any], limit: int) -> tuple[int, int]:
    """(from, count) of get_blocks / get_headers, count capped at what we serve in one reply."""
    _fields(msg, ("from", "count"))
    return _uint(msg, "from"), min(_uint(msg, "count"), limit)


def blocks(raw_blocks: list[bytes], height: int) -> dict[str, Any]:
    """A batch of canonical blocks, with the sender's head height so the receiver knows how far to go."""
    return {"type": "blocks", "blocks": raw_blocks, "height": height}


def parse_blocks(msg: dict[str, Any]) -> tuple[list[bytes], int]:
    _fields(msg, ("blocks", "height"))
    return _blob_list(msg, "blocks", SYNC_BATCH), _uint(msg, "height")


def headers(raw_headers: list[bytes]) -> dict[str, Any]:
    return {"type": "headers", "headers": raw_headers}


def parse_headers(msg: dict[str, Any]) -> list[bytes]:
    _fields(msg, ("headers",))
    return _blob_list(msg, "headers", MAX_HEADERS)


def announce_block(raw: bytes) -> dict[str, Any]:
    return {"type": "announce_block", "block": raw}


def parse_announce_block(msg: dict[str, Any]) -> bytes:
    _fields(msg, ("block",))
    return _bytes(msg, "block")


def announce_tx(raw: bytes) -> dict[str, Any]:
    return {"type": "announce_tx", "tx": raw}


def parse_announce_tx(msg: dict[str, Any]) -> bytes:
    _fields(msg, ("tx",))
    return _bytes(msg, "tx")


def announce_txs(raws: list[bytes], also: list[bytes] | tuple[bytes, ...] = ()) -> dict[str, Any]:
    """Several transactions in one frame: at thousands a second, a frame (and a worker-thread hop
    on arrival) per transaction costs more than checking them.

    ``also``: the node keys of every peer this same frame goes to (the frame is encoded once for
    all of them). A receiver then knows those peers have the transactions and does not relay them
    there: in a full mesh of n nodes that removes (n - 1)(n - 2) of the copies of each transaction,
    all of them redundant, while a node between two others still relays to the one the sender
    does not reach."""
    msg: dict[str, Any] = {"type": "announce_txs", "txs": raws}
    if also:
        msg["also"] = list(also)
    return msg


def parse_announce_txs(msg: dict[str, Any]) -> tuple[list[bytes], list[bytes]]:
    """The transactions and the ``also`` node keys (empty when the field is absent)."""
    if "also" not in msg:
        _fields(msg, ("txs",))
        return _blob_list(msg, "txs", TX_BATCH), []
    _fields(msg, ("txs", "also"))
    also = _blob_list(msg, "also", MAX_PEERS)
    if any(len(k) != keys.PUBLIC_KEY_SIZE for k in also):
        raise BadMessage(f"announce_txs: also must list node keys of {keys.PUBLIC_KEY_SIZE} bytes")
    return _blob_list(msg, "txs", TX_BATCH), also


def ping(nonce: int) -> dict[str, Any]:
    return {"type": "ping", "nonce": nonce}


def pong(nonce: int) -> dict[str, Any]:
    return {"type": "pong", "nonce": nonce}


def parse_nonce(msg: dict[str, Any]) -> int:
    _fields(msg, ("nonce",))
    return _uint(msg, "nonce")

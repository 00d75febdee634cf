"""The transaction envelope: type, sender public key, nonce, fee, valid-until time, payload, signature.

On the wire a transaction is the deterministic-CBOR map of those fields (the signature under
``sig``); its hash is SHA-256 of exactly those bytes. The signature covers the same map without
``sig``, wrapped with the ``tx`` domain, the chain id and the genesis hash (:mod:`hub.crypto.signing`).
"""

from __future__ import annotations

import hashlib
from typing import Any

from hub.chain.protocol.errors import Reason, TxRejected
from hub.crypto import keys
from hub.crypto.address import address_of
from hub.crypto.encoding import DecodeError, decode, encode
from hub.crypto.signing import Network, signing_bytes

DOMAIN = "tx"
# Type names live here, not beside the pydantic payload models, so that code that only routes
# transactions does not pay for building the models at import time.
DEVICE_TYPES = frozenset({"bind_device", "control_command", "state_change", "command_log", "data_anchor"})
CONTRACT_TYPES = frozenset({"create_contract", "call", "return", "review", "settle", "refund"})
TYPES = frozenset({"transfer", "register_candidate", "vote", "disqualify_poll", "disqualify_vote", "evidence"}) \
    | DEVICE_TYPES | CONTRACT_TYPES
_INT_SIZE = {24: 2, 25: 3, 26: 5, 27: 9}  # CBOR unsigned: additional info -> bytes incl. the first
_PREFIXES: dict[Network, bytes] = {}


def _prefix(network: Network) -> bytes:
    """The encoding of ``["ruff", "tx", chain_id, genesis_hash, `` (a 5-array's first four items)
    and the head of a 6-entry map (the body's)."""
    p = _PREFIXES.get(network)
    if p is None:
        # Through signing_bytes, so the two paths cannot disagree on the wrapper (0 encodes as one byte).
        p = _PREFIXES[network] = signing_bytes(DOMAIN, network, 0)[:-1] + b"\xa6"
        if len(_PREFIXES) > 64:
            _PREFIXES.clear()
    return p
_FIELDS = ("fee", "nonce", "payload", "sender", "sig", "type", "valid_until")
_FIELD_SET = frozenset(_FIELDS)
_KINDS = (("type", str), ("sender", bytes), ("sig", bytes), ("payload", dict))
_UINTS = ("nonce", "fee", "valid_until")
_U64 = 2**64
_parse_payload = None  # payloads.parse, bound on first use (importing pydantic models is not free)


def _load_parse():
    """Bind :func:`payloads.parse` once: an ``import`` statement run by every
    :meth:`Transaction.model` call costs more (~2.5 us) than validating a transfer's payload."""
    global _parse_payload
    from hub.chain.protocol.payloads import parse

    _parse_payload = parse
    return parse


class Transaction:
    """A decoded, well-formed transaction (its signature and payload are judged by validation)."""

    __slots__ = ("type", "sender", "nonce", "fee", "valid_until", "payload", "signature", "raw", "hash",
                 "_sender_address", "_model")

    def __init__(self, tx_type: str, sender: bytes, nonce: int, fee: int, valid_until: int,
                 payload: dict[str, Any], signature: bytes, raw: bytes | None = None) -> None:
        self.type = tx_type
        self.sender = sender
        self.nonce = nonce
        self.fee = fee
        self.valid_until = valid_until
        self.payload = payload
        self.signature = signature
        self.raw = raw if raw is not None else encode(self.as_dict())
        self.hash = hashlib.sha256(self.raw).digest()
        self._sender_address: bytes | None = None
        self._model = None

    def body(self) -> dict[str, Any]:
        return {"type": self.type, "sender": self.sender, "nonce": self.nonce, "fee": self.fee,
                "valid_until": self.valid_until, "payload": self.payload}

    def as_dict(self) -> dict[str, Any]:
        return {**self.body(), "sig": self.signature}

    @property
    def sender_address(self) -> bytes:
        if self._sender_address is None:
            self._sender_address = address_of(self.sender)
        return self._sender_address

    @property
    def size(self) -> int:
        return len(self.raw)

    def signing_bytes(self, network: Network) -> bytes:
        """``encode(["ruff", "tx", chain_id, genesis_hash, body])``. The body is the wire map without ``sig``, and
        ``sig`` is its second key in canonical order (after ``fee``), so the bytes are cut out of
        ``raw`` instead of encoding the body again: the same bytes (a test holds the two equal),
        at a fraction of the cost, which matters when a block brings 10,000 of them."""
        raw = self.raw
        if raw.startswith(b"\xa7\x63fee") and raw[5] < 0x20:
            pos = 5 + _INT_SIZE.get(raw[5] & 0x1F, 1)
            if raw.startswith(b"\x63sig\x58\x40", pos):
                return b"".join((_prefix(network), raw[1:pos], raw[pos + 70:]))
        return signing_bytes(DOMAIN, network, self.body())

    def model(self):
        """The payload's pydantic model; raises TxRejected for an unknown type or a bad payload."""
        if self._model is None:
            parse = _parse_payload or _load_parse()
            try:
                self._model = parse(self.type, self.payload)
            except KeyError:
                raise TxRejected(Reason.UNKNOWN_TYPE, f"unknown transaction type {self.type!r}") from None
            except ValueError as exc:
                raise TxRejected(Reason.BAD_PAYLOAD, f"{self.type}: {exc}") from None
        return self._model

    @classmethod
    def create(cls, key: keys.PrivateKey, network: Network, tx_type: str, payload: Any, *, nonce: int, fee: int,
               valid_until: int) -> "Transaction":
        if hasattr(payload, "model_dump"):
            payload = payload.model_dump()
        unsigned = cls(tx_type, key.public_key, nonce, fee, valid_until, payload, b"", raw=b"")
        sig = key.sign(unsigned.signing_bytes(network))
        return cls(tx_type, key.public_key, nonce, fee, valid_until, payload, sig)

    @classmethod
    def from_bytes(cls, raw: bytes, max_size: int | None = None) -> "Transaction":
        """Decode the wire form; any defect is ``TxRejected(BAD_ENCODING or TOO_LARGE)``."""
        if max_size is not None and len(raw) > max_size:
            raise TxRejected(Reason.TOO_LARGE, f"{len(raw)} bytes, the limit is {max_size}")
        try:
            d = decode(raw)
        except DecodeError as exc:
            raise TxRejected(Reason.BAD_ENCODING, str(exc)) from None
        return cls.from_dict(d, raw=bytes(raw))

    @classmethod
    def from_dict(cls, d: Any, raw: bytes | None = None) -> "Transaction":
        if not isinstance(d, dict) or d.keys() != _FIELD_SET:
            have = sorted(d) if isinstance(d, dict) else type(d).__name__
            raise TxRejected(Reason.BAD_ENCODING, f"a transaction is a map of {', '.join(_FIELDS)}; got {have}")
        tx_type, sender, sig, payload = d["type"], d["sender"], d["sig"], d["payload"]
        nonce, fee, valid_until = d["nonce"], d["fee"], d["valid_until"]
        # The checks of _KINDS and _UINTS, in that order, written out: this runs for each of a
        # block's 10,000 transactions. type(v) is the exact type; a subclass takes the general test.
        if not (type(tx_type) is str and type(sender) is bytes and type(sig) is bytes and type(payload) is dict):
            for name, kind in _KINDS:
                if not isinstance(d[name], kind):
                    raise TxRejected(Reason.BAD_ENCODING, f"{name} must be {kind.__name__}")
        if not (type(nonce) is int and type(fee) is int and type(valid_until) is int
                and 0 <= nonce < _U64 and 0 <= fee < _U64 and 0 <= valid_until < _U64):
            for name in _UINTS:
                v = d[name]
                if not isinstance(v, int) or isinstance(v, bool) or not 0 <= v < _U64:
                    raise TxRejected(Reason.BAD_ENCODING, f"{name} must be an unsigned 64-bit integer")
        if len(sender) != keys.PUBLIC_KEY_SIZE:
            raise TxRejected(Reason.BAD_ENCODING, "sender must be a 32-byte public key")
        return cls(tx_type, sender, nonce, fee, valid_until, payload, sig, raw=raw)

    def __repr__(self) -> str:
        return f"<Transaction {self.type} {self.hash.hex()[:12]} nonce={self.nonce} fee={self.fee}>"


def check_signature(tx: Transaction, network: Network) -> None:
    if not keys.verify(tx.sender, tx.signing_bytes(network), tx.signature):
        raise TxRejected(Reason.BAD_SIGNATURE, "the signature does not verify for this sender and network "
                         "(chain id and genesis): signed for another network, or by another key")

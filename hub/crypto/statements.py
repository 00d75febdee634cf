"""Every signed statement about a device, in one place: its fields, its domain, who signs it.

The chain (``bind_device``, ``control_command`` effects), the hub's gate and a key-holding device
(``hardware-in-loop/simulators/``) all check these, so their byte layout lives here and nowhere
else. A statement is signed as ``signing_bytes(DOMAIN, network, body)`` (``hub.crypto.signing``):
the domain keeps a signature on a hand-over from being passed off as a command, and the network
(chain id and genesis hash) keeps it from being replayed on another chain.

| statement | signed by | says |
| --- | --- | --- |
| ``Bind``      | the device key (printed on the label, whitepaper mode) | ``controller`` controls me from ``time`` on |
| ``BindProof`` | the device key, held by the device (strong mode)       | the same, for ``nonce`` the controller chose |
| ``Handover``  | the current controller                                  | control passes from binding ``seq`` to ``to`` |
| ``Sale``      | the current controller                                  | whoever pays ``price`` (or only ``buyer``) gets control |
| ``Reset``     | the device key (factory reset)                          | I have no controller from ``time`` on |
| ``Grant``     | the controller                                          | ``grantee`` may run ``commands`` in a window |
| ``Revoke``    | the controller                                          | grants of an epoch below ``epoch`` are void |
| ``Command``   | the controller or a grantee                             | run ``entity.command(args)``, once |
| ``Cheque``    | a renter                                                | the payee may take ``amount`` (cumulative) from ``channel`` |
| ``Receipt``   | the device, or the hub as its light node                | ``entity`` read ``reading`` at ``time`` during ``call`` |
| ``ReviewConsent`` | the controller                                      | the renter of ``call`` may review ``contract`` and ``device`` |

Bodies are plain CBOR maps with short text keys; bytes are bytes (hex in JSON). ``from_body``
checks every field's type and size, so a malformed statement is refused with the field named,
before any signature work.
"""

import hashlib
import math
from dataclasses import dataclass, fields
from typing import Annotated, Any, ClassVar, TypeVar

from hub.crypto import keys
from hub.crypto.encoding import encode, hash_object
from hub.crypto.signing import Network, signing_bytes

VERSION = 1
MAX_ARGS_BYTES = 1024  # encoded args of one command
MAX_COMMANDS = 32  # commands one grant names
WILDCARD = "*"  # a grant of every command (a shared admin)
U64 = 2**64

T = TypeVar("T", bound="Statement")


# Field kinds: each annotation carries the name ``_check`` knows it by.
Key = Annotated[bytes, "bytes32"]  # an Ed25519 public key or a 32-byte nonce
OptionalKey = Annotated[bytes, "bytes32?"]  # the same, or empty (anyone)
U64Field = Annotated[int, "u64"]
Name = Annotated[str, "name"]  # 1-64 characters
Names = Annotated[tuple[str, ...], "names"]  # command names, sorted, unique
Text = Annotated[str, "text"]  # at most 256 characters
Args = Annotated[dict[str, Any], "args"]  # a command's arguments, bounded


#: Valid statement signatures remembered (key, signature, SHA-256 of the signed bytes): ~200 bytes
#: each, so at most ~3 MB; cleared when full.
MAX_VERDICTS = 16_384
_VERDICTS: dict[tuple[bytes, bytes, bytes], None] = {}


def forget_verdicts() -> None:
    """Check every statement signature again from now on (benchmarks of the cold path)."""
    _VERDICTS.clear()


def _kind(annotation: Any) -> str:
    return annotation.__metadata__[0]


class StatementError(ValueError):
    """A statement is malformed; the message names the field."""


@dataclass(frozen=True)
class Statement:
    DOMAIN: ClassVar[str] = ""
    SIGNER: ClassVar[str] = ""  # the field naming who signs it ("" when the signer is implied)

    def body(self) -> dict[str, Any]:
        # Shallow, not dataclasses.asdict: asdict deep-copies every value (args included), half the
        # cost of checking a signed command on the gate's hot path; encoding only reads the values.
        out = {name: getattr(self, name) for name in _field_names(type(self))}
        out["v"] = VERSION
        return out

    def signing_bytes(self, network: Network) -> bytes:
        return signing_bytes(self.DOMAIN, network, self.body())

    def sign(self, key: keys.PrivateKey, network: Network) -> bytes:
        return key.sign(self.signing_bytes(network))

    def verify(self, public_key: bytes, signature: bytes, network: Network) -> bool:
        """Valid signatures are remembered (:data:`MAX_VERDICTS`): a node checks a transaction's
        statements when its mempool admits it and again when the block applies it, and a return
        or a settle carries one or two of them (``benchmarks/bench_market_apply.py``). A verdict
        depends only on the key, the signature and the signed bytes, all in the memo's key, so
        remembering it changes no outcome; an invalid one is checked every time."""
        message = self.signing_bytes(network)
        memo = (public_key, signature, hashlib.sha256(message).digest())
        if memo in _VERDICTS:
            return True
        if not keys.verify(public_key, message, signature):
            return False
        if len(_VERDICTS) >= MAX_VERDICTS:
            _VERDICTS.clear()
        _VERDICTS[memo] = None
        return True

    @classmethod
    def from_body(cls: type[T], body: Any) -> T:
        if not isinstance(body, dict):
            raise StatementError(f"{cls.DOMAIN}: expected a map, got {type(body).__name__}")
        kinds = _field_kinds(cls)
        extra = body.keys() - kinds.keys() - {"v"}
        if extra:
            raise StatementError(f"{cls.DOMAIN}: unknown field(s) {', '.join(sorted(map(str, extra)))}")
        if body.get("v", VERSION) != VERSION:
            raise StatementError(f"{cls.DOMAIN}.v: version {body.get('v')!r} is not {VERSION}")
        values = {}
        for name, kind in kinds.items():
            if name not in body:
                raise StatementError(f"{cls.DOMAIN}.{name}: missing")
            values[name] = _check(cls.DOMAIN, name, kind, body[name])
        made = cls(**values)
        made._validate()
        return made

    def _validate(self) -> None:
        """Checks across fields; subclasses add theirs."""

    def to_json(self) -> dict[str, Any]:
        """Bytes as hex: what the HTTP API and the CLI exchange."""
        return {k: (v.hex() if isinstance(v, bytes) else v) for k, v in self.body().items()}

    @classmethod
    def from_json(cls: type[T], data: Any) -> T:
        if not isinstance(data, dict):
            raise StatementError(f"{cls.DOMAIN}: expected an object")
        types = {f.name: _kind(f.type) for f in fields(cls)}
        body = {}
        for k, v in data.items():
            if types.get(k) in ("bytes", "bytes32", "bytes32?") and isinstance(v, str):
                try:
                    v = bytes.fromhex(v)
                except ValueError:
                    raise StatementError(f"{cls.DOMAIN}.{k}: not hex") from None
            body[k] = v
        return cls.from_body(body)


_FIELD_NAMES: dict[type, tuple[str, ...]] = {}


_FIELD_KINDS: dict[type, dict[str, str]] = {}


def _field_kinds(cls: type) -> dict[str, str]:
    """Field name -> kind, in declaration order; read once per class (``dataclasses.fields`` for
    each statement parsed was a tenth of a market block's rules)."""
    kinds = _FIELD_KINDS.get(cls)
    if kinds is None:
        kinds = _FIELD_KINDS[cls] = {f.name: _kind(f.type) for f in fields(cls)}
    return kinds


def _field_names(cls: type) -> tuple[str, ...]:
    names = _FIELD_NAMES.get(cls)
    if names is None:
        names = _FIELD_NAMES[cls] = tuple(f.name for f in fields(cls))
    return names


def _check(domain: str, name: str, kind: Any, value: Any) -> Any:
    where = f"{domain}.{name}"
    if kind == "bytes32":
        if not isinstance(value, bytes) or len(value) != 32:
            raise StatementError(f"{where}: 32 bytes expected")
    elif kind == "bytes32?":
        if not isinstance(value, bytes) or len(value) not in (0, 32):
            raise StatementError(f"{where}: 32 bytes (or empty) expected")
    elif kind == "u64":
        if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < U64:
            raise StatementError(f"{where}: an integer from 0 to 2^64-1 expected")
    elif kind == "name":
        if not isinstance(value, str) or not 1 <= len(value) <= 64:
            raise StatementError(f"{where}: text of 1 to 64 characters expected")
    elif kind == "text":
        if not isinstance(value, str) or len(value) > 256:
            raise StatementError(f"{where}: text of at most 256 characters expected")
    elif kind == "names":
        if (not isinstance(value, (list, tuple)) or not 1 <= len(value) <= MAX_COMMANDS
                or not all(isinstance(v, str) and 1 <= len(v) <= 130 for v in value)):
            raise StatementError(f"{where}: a list of 1 to {MAX_COMMANDS} command names expected")
        value = tuple(sorted(set(value)))
    elif kind == "args":
        if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
            raise StatementError(f"{where}: an object of name: value expected")
        _check_value(where, value, 0)
        if len(encode(value)) > MAX_ARGS_BYTES:
            raise StatementError(f"{where}: larger than {MAX_ARGS_BYTES} bytes encoded")
    else:  # pragma: no cover - a field with a type this table does not know is a bug here
        raise TypeError(f"{where}: unknown field kind {kind!r}")
    return value


def _check_value(where: str, value: Any, depth: int) -> None:
    if depth > 4:
        raise StatementError(f"{where}: nested deeper than 4")
    if isinstance(value, float):
        if not math.isfinite(value):
            raise StatementError(f"{where}: {value} is not a finite number")
    elif isinstance(value, dict):
        for k, v in value.items():
            if not isinstance(k, str):
                raise StatementError(f"{where}: keys must be text")
            _check_value(f"{where}.{k}", v, depth + 1)
    elif isinstance(value, (list, tuple)):
        for v in value:
            _check_value(where, v, depth + 1)
    elif not (value is None or isinstance(value, (bool, int, str))):
        raise StatementError(f"{where}: {type(value).__name__} is not allowed")
    if isinstance(value, int) and not isinstance(value, bool) and not -U64 < value < U64:
        raise StatementError(f"{where}: integer out of range")


@dataclass(frozen=True)
class Bind(Statement):
    """The whitepaper's binding, signed with the private key read from the device's label."""

    DOMAIN: ClassVar[str] = "bind"
    device: Key
    controller: Key
    time: U64Field  # ms; a later device-signed Bind or Reset supersedes an earlier one


@dataclass(frozen=True)
class BindProof(Statement):
    """Strong mode: the device signs this itself after checking the label's setup code, so its
    private key never leaves it. ``nonce`` is the controller's, so an old proof cannot be replayed."""

    DOMAIN: ClassVar[str] = "bind-proof"
    device: Key
    controller: Key
    nonce: Key
    time: U64Field


@dataclass(frozen=True)
class Handover(Statement):
    """A transfer of ownership, signed by the current controller. ``seq`` is the binding it hands
    over (the chain's binding counter), so a hand-over can be used once."""

    DOMAIN: ClassVar[str] = "handover"
    SIGNER: ClassVar[str] = "controller"
    device: Key
    controller: Key
    to: Key
    seq: U64Field


@dataclass(frozen=True)
class Sale(Statement):
    """An offer to sell, signed by the current controller: the buyer's ``bind_device`` transaction
    pays ``price`` to the seller and takes control in one step. ``buyer`` empty: anyone."""

    DOMAIN: ClassVar[str] = "sale"
    SIGNER: ClassVar[str] = "seller"
    device: Key
    seller: Key
    buyer: OptionalKey
    price: U64Field
    seq: U64Field
    expires: U64Field  # ms, block time


@dataclass(frozen=True)
class Reset(Statement):
    """A factory reset, signed by the device key: no controller from ``time`` on."""

    DOMAIN: ClassVar[str] = "reset"
    device: Key
    time: U64Field


@dataclass(frozen=True)
class Grant(Statement):
    """Access for a second key, signed by the controller: a shared admin (``commands`` = ``["*"]``,
    no end) or a renter (the paid commands, the paid window). ``commands`` are
    ``"<entity>.<command>"`` names (``relay.turn_on``) or ``"*"``. ``epoch``: the device's
    revocation epoch the grant was made in; a grant below the device's epoch is void."""

    DOMAIN: ClassVar[str] = "grant"
    SIGNER: ClassVar[str] = "controller"
    device: Key
    controller: Key
    grantee: Key
    commands: Names
    not_before: U64Field  # ms
    not_after: U64Field  # ms; 0 = no end
    epoch: U64Field
    ref: Text  # why: "share", "contract:<hex>"

    def __post_init__(self) -> None:  # signer and verifier must hash the same list: sorted, unique
        object.__setattr__(self, "commands", tuple(sorted(set(self.commands))))

    def allows(self, entity: str, command: str, now_ms: int) -> bool:
        if now_ms < self.not_before or (self.not_after and now_ms > self.not_after):
            return False
        return WILDCARD in self.commands or f"{entity}.{command}" in self.commands


@dataclass(frozen=True)
class Revoke(Statement):
    """Signed by the controller: every grant made in an epoch below ``epoch`` is void. The device
    keeps the highest epoch it saw, so the revocation holds while it is offline."""

    DOMAIN: ClassVar[str] = "revoke"
    SIGNER: ClassVar[str] = "controller"
    device: Key
    controller: Key
    epoch: U64Field


@dataclass(frozen=True)
class Command(Statement):
    """A signed command: ``entity`` is the entity's key on the device (``relay``), ``command`` the
    capability command (``turn_on``). ``chain`` names the chain id in clear so a verifier can say
    "wrong chain" rather than "forged"; the signature binds the genesis too. ``counter`` must rise
    per signer; ``issued_at`` (ms) must be within the verifier's window."""

    DOMAIN: ClassVar[str] = "command"
    SIGNER: ClassVar[str] = "signer"
    chain: Name
    device: Key
    entity: Name
    command: Name
    args: Args
    issued_at: U64Field
    counter: U64Field
    signer: Key


@dataclass(frozen=True)
class Cheque(Statement):
    """A renter's off-chain payment (issue #17, the market): the payee of ``channel`` may withdraw
    ``amount``, cumulative over the whole channel, so only the latest cheque matters and an older
    one is worth less. ``call_amount`` is cumulative over ``call`` (what a ``return`` may claim for
    it); ``receipt`` is the hash of the device-signed receipt it pays for, so a dispute points at
    signed evidence. Chain, channel and contract are all signed: µRaiden had a replay hole until
    its contract address was."""

    DOMAIN: ClassVar[str] = "cheque"
    SIGNER: ClassVar[str] = "renter"
    chain: Name
    channel: Key
    contract: Key
    call: Key
    receipt: Key
    amount: U64Field
    call_amount: U64Field
    renter: Key

    def _validate(self) -> None:
        if self.call_amount > self.amount:  # a call's share cannot exceed the channel's total
            raise StatementError(f"cheque.call_amount: {self.call_amount} is above amount {self.amount}")


@dataclass(frozen=True)
class Receipt(Statement):
    """A meter reading during a call, signed by the device (or by the hub as its light node):
    the evidence a cheque pays for. ``reading``: the meter in integer milli-units (Wh for a kWh
    meter) or, for time-metered contracts, the ms elapsed since the call. A receipt's hash, which
    a cheque names, is :func:`receipt_hash`."""

    DOMAIN: ClassVar[str] = "receipt"
    SIGNER: ClassVar[str] = "signer"
    chain: Name
    device: Key
    call: Key
    entity: Name
    reading: U64Field
    time: U64Field  # ms
    signer: Key


@dataclass(frozen=True)
class ReviewConsent(Statement):
    """The controller's consent, signed with its ``return`` before the renter speaks, to be
    reviewed by the call's renter: a review then needs no second signature from the owner, and an
    owner cannot avoid reviews by refusing to sign after a bad rental."""

    DOMAIN: ClassVar[str] = "review-consent"
    SIGNER: ClassVar[str] = "controller"
    chain: Name
    contract: Key
    call: Key
    device: Key
    controller: Key


def receipt_hash(receipt: Receipt) -> bytes:
    """What a cheque's ``receipt`` field names: the hash of the receipt's body (not its
    signature, so the hash is known before signing and cannot be changed by re-signing)."""
    return hash_object(receipt.body())


@dataclass(frozen=True)
class Signed:
    """A statement with its signature: the unit that travels (HTTP, TCP, a transaction)."""

    statement: Statement
    signature: bytes

    def to_body(self) -> dict[str, Any]:
        return {"kind": self.statement.DOMAIN, "body": self.statement.body(), "sig": self.signature}

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.statement.DOMAIN, "body": self.statement.to_json(), "sig": self.signature.hex()}

    @classmethod
    def from_body(cls, data: Any) -> "Signed":
        kind, body, sig = _parts(data)
        if not isinstance(sig, bytes) or len(sig) != 64:
            raise StatementError("sig: 64 bytes expected")
        return cls(KINDS[kind].from_body(body), sig)

    @classmethod
    def from_json(cls, data: Any) -> "Signed":
        kind, body, sig = _parts(data)
        try:
            raw = bytes.fromhex(sig) if isinstance(sig, str) else None
        except ValueError:
            raw = None
        if raw is None or len(raw) != 64:
            raise StatementError("sig: 64 bytes of hex expected")
        return cls(KINDS[kind].from_json(body), raw)

    def signer(self) -> bytes | None:
        """The key whose signature this must be, when the statement names it."""
        name = self.statement.SIGNER
        return getattr(self.statement, name) if name else None

    def verify(self, public_key: bytes, network: Network) -> bool:
        return self.statement.verify(public_key, self.signature, network)


def _parts(data: Any) -> tuple[str, Any, Any]:
    if not isinstance(data, dict) or set(data) != {"kind", "body", "sig"}:
        raise StatementError("a signed statement is {kind, body, sig}")
    kind = data["kind"]
    if not isinstance(kind, str) or kind not in KINDS:  # a list or map here raised TypeError (unhashable)
        raise StatementError(f"kind: {kind!r} is not one of {', '.join(sorted(KINDS))}")
    return kind, data["body"], data["sig"]


def sign(statement: Statement, key: keys.PrivateKey, network: Network) -> Signed:
    return Signed(statement, statement.sign(key, network))


KINDS: dict[str, type[Statement]] = {
    cls.DOMAIN: cls for cls in (Bind, BindProof, Handover, Sale, Reset, Grant, Revoke, Command, Cheque, Receipt,
                                 ReviewConsent)
}

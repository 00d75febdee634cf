"""Payload models of every transaction type DESIGN.md lists.

Strict pydantic models (no coercion: a string is never read as a number) with ``extra="forbid"``:
two nodes must agree on whether a payload is valid, so nothing is guessed. Types whose effects come
in later issues (``data_anchor``) are validated here already, so blocks carrying them are judged the
same way by every node from the first release. The device and market types carry signed statements
(``hub.crypto.statements``) as their CBOR bodies, parsed here field by field; their signatures are
checked by the rules (``devices.py``, ``market.py``), which know who must have signed.
"""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal

from pydantic import (AfterValidator, BaseModel, ConfigDict, Field, PlainSerializer, ValidationError,
                      field_validator, model_validator)

from hub.chain.protocol.tx import CONTRACT_TYPES, DEVICE_TYPES, TYPES  # noqa: F401 - re-exported
from hub.crypto.encoding import encode
from hub.crypto.statements import (Bind, BindProof, Cheque, Command, Grant, Handover, Reset, Revoke, ReviewConsent, Sale,
                                   Signed, Statement)

U64 = Annotated[int, Field(ge=0, lt=2**64)]
PosU64 = Annotated[int, Field(gt=0, lt=2**64)]
Address = Annotated[bytes, Field(min_length=20, max_length=20)]
PublicKey = Annotated[bytes, Field(min_length=32, max_length=32)]
Hash = Annotated[bytes, Field(min_length=32, max_length=32)]
Signature = Annotated[bytes, Field(min_length=64, max_length=64)]
Name = Annotated[str, Field(pattern=r"^[a-z0-9_-]{1,32}$")]
Text = Annotated[str, Field(max_length=256)]


class Payload(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)


class Transfer(Payload):
    to: Address
    amount: PosU64
    memo: Annotated[bytes, Field(max_length=64)] = b""


class RegisterCandidate(Payload):
    name: Name


class Vote(Payload):
    """The voter's whole vote: it replaces the previous one; an empty list withdraws it."""

    candidates: Annotated[list[Address], Field(max_length=1000)]


class DisqualifyPoll(Payload):
    target: Address
    reason: Text = ""


class DisqualifyVote(Payload):
    poll: Hash  # hash of the disqualify_poll transaction
    approve: bool


class Evidence(Payload):
    """Two signed headers (as encoded in blocks) by one producer for one slot."""

    first: dict[str, Any]
    second: dict[str, Any]


def _signed(*kinds: type[Statement], optional: bool = False) -> Any:
    """A field holding one signed statement (``Signed.to_body()``) of one of ``kinds``, parsed into
    a :class:`Signed` (fields checked, signature not: the rules check it against the state)."""
    names = {k.DOMAIN for k in kinds}

    def parse(value: Any) -> Signed | None:
        if value is None and optional:
            return None
        if isinstance(value, Signed):  # a model built in code, not read off the wire
            value = value.to_body()
        signed = Signed.from_body(value)  # StatementError (a ValueError) names the field
        if signed.statement.DOMAIN not in names:
            raise ValueError(f"a {signed.statement.DOMAIN} statement is not accepted here; "
                             f"expected {' or '.join(sorted(names))}")
        return signed

    def dump(value: Signed | None) -> Any:
        return None if value is None else value.to_body()

    return Annotated[Any, AfterValidator(parse), PlainSerializer(dump)]


def _small_value(value: Any) -> Any:
    """A reported state: plain CBOR data (finite floats only), at most MAX_VALUE_BYTES encoded."""
    _plain_value(value, 0)
    size = len(encode(value))
    if size > MAX_VALUE_BYTES:
        raise ValueError(f"{size} bytes encoded, at most {MAX_VALUE_BYTES}")
    return value


def _plain_value(value: Any, depth: int) -> None:
    if depth > 4:
        raise ValueError("nested deeper than 4")
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{value} is not a finite number")
    elif isinstance(value, dict):
        for k, v in value.items():
            if not isinstance(k, str):
                raise ValueError("map keys must be text")
            _plain_value(v, depth + 1)
    elif isinstance(value, (list, tuple)):
        for v in value:
            _plain_value(v, depth + 1)
    elif isinstance(value, int) and not isinstance(value, bool):
        if not -2**64 < value < 2**64:
            raise ValueError("integer out of range")
    elif not (value is None or isinstance(value, (bool, str, bytes))):
        raise ValueError(f"{type(value).__name__} is not allowed")


MAX_VALUE_BYTES = 256  # encoded state_change value


class BindDevice(Payload):
    """A binding, hand-over, sale, factory reset or revocation, as the device or its controller
    signed it (``hub.crypto.statements``); the rules are in ``devices.py``."""

    statement: _signed(Bind, BindProof, Handover, Sale, Reset, Revoke)


class ControlCommand(Payload):
    """A signed command for the device's hub to run (once); ``grant``: the controller's grant to
    the command's signer, when the signer is not the controller."""

    command: _signed(Command)
    grant: _signed(Grant, optional=True) = None


class StateChange(Payload):
    """A device's reported state; with ``command`` (a ``control_command`` transaction's hash) the
    outcome of that command, which closes it."""

    device: PublicKey
    command: Annotated[bytes, Field(max_length=32)] = b""
    ok: bool = True
    reason: Annotated[str, Field(max_length=64)] = ""
    entity: Annotated[str, Field(max_length=64)] = ""
    value: Annotated[Any, AfterValidator(_small_value)] = None

    @field_validator("command")
    @classmethod
    def _command_hash(cls, value: bytes) -> bytes:
        if len(value) not in (0, 32):
            raise ValueError("a transaction hash (32 bytes) or empty")
        return value


class CommandLog(Payload):
    """The root of an RFC 6962 tree over the sender's command-log entries ``first`` to
    ``first + count - 1`` (the sender's log has no gap and no overlap: ``devices.py``)."""

    root: Hash
    first: U64
    count: PosU64
    first_time: U64  # ms, the first entry's time
    last_time: U64  # ms, the last entry's

    @model_validator(mode="after")
    def _consistent(self) -> "CommandLog":
        if self.first + self.count > 2**64:
            raise ValueError("first + count is beyond 2^64")
        if self.first_time > self.last_time:
            raise ValueError(f"first_time {self.first_time} is after last_time {self.last_time}")
        return self


class DataAnchor(Payload):
    hash: Hash
    label: Text = ""


class Terms(Payload):
    """A contract's price list. ``prepaid``: ``price`` per ``window`` (ms), at most ``max_duration``
    (ms) per call (Slock.it's lock). ``metered``: ``rate`` per 1,000 milli-units of the ``meter``
    entity (per kWh of "energy"), or with ``meter`` "" per ``interval`` ms of time; ``deposit`` is
    the least a renter's channel must hold, ``max_duration`` (ms) the longest session. The other
    kind's fields must stay 0 (or ""), so one price list has one encoding (docs/chain.md, "Market
    transactions")."""

    kind: Literal["prepaid", "metered"]
    price: U64 = 0
    window: U64 = 0
    rate: U64 = 0
    meter: Annotated[str, Field(pattern=r"^[A-Za-z0-9_.:-]{0,64}$")] = ""
    interval: U64 = 0
    deposit: U64 = 0
    max_duration: PosU64

    @model_validator(mode="after")
    def _consistent(self) -> "Terms":
        if self.kind == "prepaid":
            unused = {"rate": self.rate, "meter": self.meter, "interval": self.interval, "deposit": self.deposit}
            if not self.price:
                raise ValueError("a prepaid contract needs a price (per window) above 0")
            if not self.window:
                raise ValueError("a prepaid contract needs a window (ms) above 0")
            if self.max_duration < self.window:
                raise ValueError(f"max_duration {self.max_duration} is shorter than one window ({self.window})")
        else:
            unused = {"price": self.price, "window": self.window}
            if not self.rate:
                raise ValueError("a metered contract needs a rate above 0")
            if not self.meter and not self.interval:
                raise ValueError("a time-metered contract (meter \"\") needs an interval (ms) above 0")
            if self.meter and self.interval:
                raise ValueError("interval is for time metering only; with a meter the rate is per 1,000 milli-units")
        for name, value in unused.items():
            if value:
                raise ValueError(f"{name} is not a term of a {self.kind} contract; leave it out")
        return self

    def as_tuple(self) -> tuple:
        """The terms as the ``contract`` namespace keeps them (state.py)."""
        return (self.kind, self.price, self.window, self.rate, self.meter, self.interval, self.deposit,
                self.max_duration)


CommandName = Annotated[str, Field(min_length=1, max_length=130)]  # "<entity>.<command>", as grants name them


class CreateContract(Payload):
    """An offer of ``device``'s ``commands`` on ``terms``; ``endpoint``: the owner's hub URL for
    renters (may be ""). Sent by the device's controller on chain; its id is the transaction hash."""

    device: PublicKey
    commands: Annotated[list[CommandName], Field(min_length=1, max_length=32)]
    terms: Terms
    endpoint: Text = ""

    @field_validator("commands")
    @classmethod
    def _unique(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError("a command is named twice")
        if "*" in value:
            raise ValueError("a contract names its commands; \"*\" (every command) is for shared admins only")
        return value


class Call(Payload):
    """A renter's call: a prepaid contract's escrow, or a top-up (may be 0) of the renter's channel
    to the contract's controller for a metered one."""

    contract: Hash
    deposit: U64


class Return(Payload):
    """The controller's answer to a call: ``used`` is paid, the rest of a prepaid escrow goes back.
    ``consent``: the controller's signed consent to be reviewed; ``cheque``: the call's latest
    cheque (required for a metered call, absent for a prepaid one)."""

    call: Hash
    used: U64
    result: Text = ""
    consent: _signed(ReviewConsent)
    cheque: _signed(Cheque, optional=True) = None


class Review(Payload):
    """One negative review by the call's renter, within REVIEW_PERIOD after the return."""

    call: Hash
    comment: Text = ""


class Settle(Payload):
    """A channel's cheque: withdrawn by the payee (``close`` false), a cooperative close by the
    payee, a renter's close alone (which starts a challenge), or an answer to one."""

    channel: Hash
    cheque: _signed(Cheque, optional=True) = None
    close: bool = False


class Refund(Payload):
    """``target``: a call nobody returned in time (its renter takes the deposit back) or a
    channel whose challenge is over (anyone pays it out)."""

    target: Hash


MODELS: dict[str, type[Payload]] = {
    "transfer": Transfer,
    "register_candidate": RegisterCandidate,
    "vote": Vote,
    "disqualify_poll": DisqualifyPoll,
    "disqualify_vote": DisqualifyVote,
    "evidence": Evidence,
    "bind_device": BindDevice,
    "control_command": ControlCommand,
    "state_change": StateChange,
    "command_log": CommandLog,
    "data_anchor": DataAnchor,
    "create_contract": CreateContract,
    "call": Call,
    "return": Return,
    "review": Review,
    "settle": Settle,
    "refund": Refund,
}
assert set(MODELS) == set(TYPES), "every transaction type has a payload model"


def parse(tx_type: str, payload: dict) -> Payload:
    """The validated payload; raises ``KeyError`` for an unknown type, ``ValueError`` for a bad payload."""
    model = MODELS[tx_type]
    try:
        return model.model_validate(payload)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        where = ".".join(str(p) for p in first["loc"]) or "payload"
        raise ValueError(f"{where}: {first['msg'].removeprefix('Value error, ')}") from None

"""Payload models of every transaction type DESIGN.md lists.

Strict pydantic models (no coercion: a string is never read as a number) with ``extra="forbid"``:
two nodes must agree on whether a payload is valid, so nothing is guessed. Types whose effects come
in later issues (device and contract types) are validated here already, so blocks carrying them are
judged the same way by every node from the first release.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from hub.chain.protocol.tx import CONTRACT_TYPES, DEVICE_TYPES, TYPES  # noqa: F401 - re-exported

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


class BindDevice(Payload):
    device: PublicKey
    controller: PublicKey
    time: U64
    device_signature: Signature


class ControlCommand(Payload):
    device: PublicKey
    command: Annotated[str, Field(min_length=1, max_length=64)]
    args: dict[str, Any] = {}
    counter: U64


class StateChange(Payload):
    device: PublicKey
    entity: Annotated[str, Field(min_length=1, max_length=64)]
    value: Any = None


class CommandLog(Payload):
    device: PublicKey
    root: Hash
    count: PosU64
    first_time: U64
    last_time: U64


class DataAnchor(Payload):
    hash: Hash
    label: Text = ""


class Terms(Payload):
    kind: Literal["prepaid", "metered"]
    price: U64 = 0  # prepaid: per window
    window: U64 = 0  # ms
    rate: U64 = 0  # metered: per interval
    interval: U64 = 0  # ms
    deposit: U64 = 0
    max_duration: U64 = 0  # ms


class CreateContract(Payload):
    device: PublicKey
    commands: Annotated[list[Annotated[str, Field(min_length=1, max_length=64)]], Field(min_length=1, max_length=32)]
    terms: Terms


class Call(Payload):
    contract_height: U64
    contract_tx: Hash
    deposit: PosU64


class Return(Payload):
    call: Hash
    used: U64
    result: Text = ""
    review: Annotated[bytes, Field(max_length=256)] = b""


class Review(Payload):
    return_tx: Hash
    controller_signature: Signature


class Settle(Payload):
    call: Hash
    amount: U64
    cheque_signature: Signature


class Refund(Payload):
    call: Hash


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
        raise ValueError(f"{where}: {first['msg']}") from None

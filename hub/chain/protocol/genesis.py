"""The genesis file: chain id, time, initial balances, initial producers, constant overrides.

JSON or YAML. Amounts are integer base units, the time integer unix milliseconds, producers hex
public keys, balances keyed by ``ruff1...`` addresses. The genesis hash commits to all of it,
including the constants, so two nodes with different rules never mistake each other's chains.
"""

from __future__ import annotations

import json
from functools import cached_property
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from hub.chain.protocol import constants as k
from hub.chain.protocol.state import ZERO_HASH, Head, State, chain_state_hash
from hub.crypto.address import AddressError, decode_address
from hub.crypto.encoding import hash_object
from hub.crypto.signing import Network


class GenesisError(ValueError):
    """A genesis file that cannot start a chain; the message names the field."""


class Genesis(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    chain_id: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_.-]{0,63}$")]
    genesis_time: Annotated[int, Field(ge=0, lt=2**63)]
    producers: Annotated[list[str], Field(min_length=1)]
    balances: dict[str, Annotated[int, Field(ge=0, lt=2**63)]] = {}
    constants: dict[str, Any] = {}

    @field_validator("producers")
    @classmethod
    def _keys(cls, value: list[str]) -> list[str]:
        for pk in value:
            try:
                if len(bytes.fromhex(pk)) != 32:
                    raise ValueError
            except ValueError:
                raise ValueError(f"producer {pk!r} is not a 64-hex-digit public key") from None
        if len(set(value)) != len(value):
            raise ValueError("a producer is listed twice")
        return value

    @field_validator("balances")
    @classmethod
    def _addresses(cls, value: dict[str, int]) -> dict[str, int]:
        for address in value:
            try:
                decode_address(address)
            except AddressError as exc:
                raise ValueError(f"balance address {address!r}: {exc}") from None
        return value

    def rules(self) -> k.Constants:
        try:
            c = k.with_overrides(self.constants)
        except k.ConstantsError as exc:
            raise GenesisError(f"constants: {exc}") from None
        if len(self.producers) > c.PRODUCERS:
            # A round has PRODUCERS blocks: with more producers some would have no slot in it, and
            # more than 2/3 of them could never sign one round (nothing would become irreversible).
            raise GenesisError(f"producers: {len(self.producers)} listed, but PRODUCERS is {c.PRODUCERS} "
                               "(a round has that many blocks, so at most that many producers)")
        return c

    def canonical(self) -> dict[str, Any]:
        return {
            "chain_id": self.chain_id,
            "genesis_time": self.genesis_time,
            "producers": sorted(bytes.fromhex(pk) for pk in self.producers),
            "balances": sorted([decode_address(a), v] for a, v in self.balances.items()),
            "constants": self.rules().canonical(),
        }

    @cached_property
    def hash(self) -> bytes:
        """Computed once: it hashes every initial balance (190 ms with 4,000 accounts), and nodes
        compare block parents with it."""
        return hash_object(self.canonical())

    @property
    def network(self) -> Network:
        """What every signature on this chain is bound to: its id and this genesis' hash."""
        return Network(self.chain_id, self.hash)

    def state(self) -> State:
        """The state at height 0, whose head hash is the genesis hash."""
        c = self.rules()
        d = self.canonical()
        state = State(self.chain_id, c, self.genesis_time, self.hash, Head(0, self.hash, 0, self.genesis_time, ZERO_HASH))
        state.begin()
        for address, amount in d["balances"]:
            if amount:
                state.set("acct", address, (amount, 0))
        producers = tuple(d["producers"])
        state.set("meta", "supply", sum(v for _, v in d["balances"]))
        state.set("meta", "minted", 0)
        state.set("meta", "round", 0)
        state.set("meta", "order", producers)
        state.set("meta", "elected", producers)
        changes, _ = state.commit()
        state.head = Head(0, self.hash, 0, self.genesis_time, chain_state_hash(ZERO_HASH, changes))
        return state

    def to_json(self) -> str:
        return json.dumps(self.model_dump(), indent=2) + "\n"


def load_genesis(path: Path) -> Genesis:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise GenesisError(f"cannot read {path}: {exc}") from None
    try:
        if str(path).endswith((".yaml", ".yml")):
            import yaml

            data = yaml.safe_load(text)
        else:
            data = json.loads(text)
    except ValueError as exc:  # json and yaml errors alike
        raise GenesisError(f"{path}: not valid JSON/YAML: {exc}") from None
    except Exception as exc:  # noqa: BLE001 - yaml.YAMLError is not a ValueError
        raise GenesisError(f"{path}: not valid YAML: {exc}") from None
    return parse_genesis(data, str(path))


def parse_genesis(data: Any, where: str = "genesis") -> Genesis:
    try:
        genesis = Genesis.model_validate(data)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        field = ".".join(str(p) for p in first["loc"]) or "(top level)"
        raise GenesisError(f"{where}: {field}: {first['msg']}") from None
    genesis.rules()
    return genesis

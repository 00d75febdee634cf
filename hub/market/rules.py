"""The market's rule types: a ``chain`` trigger and a ``chain_tx`` action (docs/rules.md).

```yaml
- id: thank_renters
  trigger:
    - trigger: chain
      event: payment_received      # contract_called | payment_received | review_received
      device: demo:smart_plug      # optional: only this device's contracts
  action:
    - chain_tx: {type: transfer, to: ruff1..., amount: 1000}
```

The trigger's variables (``trigger.*``): ``event``, ``contract``, ``call``, ``renter`` (hex),
``device``, ``amount`` (base units: the deposit of a call, the payment), ``kind`` (return, settle,
refund) and ``comment`` (a review). They fire when the block carrying the transaction is final, once.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

EVENTS = ("contract_called", "payment_received", "review_received")


class ChainTrigger(BaseModel):
    model_config = ConfigDict(extra="forbid")

    event: Literal["contract_called", "payment_received", "review_received"]
    device: str | None = None
    contract: str | None = Field(None, description="A contract id (64 hex digits).")

    @field_validator("contract")
    @classmethod
    def _hex(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                if len(bytes.fromhex(value)) != 32:
                    raise ValueError
            except ValueError:
                raise ValueError("a contract id is 64 hex digits") from None
            return value.lower()
        return value


class Transfer(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: Literal["transfer"]
    to: str = Field(description="An address (ruff1...) or a public key (64 hex digits).")
    amount: int = Field(gt=0, lt=2**64, description="Base units (1 RUFF = 1,000,000).")

    @field_validator("to")
    @classmethod
    def _address(cls, value: str) -> str:
        _address_of(value)
        return value


class ChainTx(BaseModel):
    model_config = ConfigDict(extra="forbid")

    chain_tx: Transfer


def _address_of(text: str) -> bytes:
    from hub.crypto.address import address_of, decode_address

    text = text.strip()
    if len(text) == 64:
        try:
            return address_of(bytes.fromhex(text))
        except ValueError:
            pass
    try:
        return decode_address(text)
    except Exception as exc:  # noqa: BLE001 - the codec's own error names what is wrong
        raise ValueError(f"to: {text!r} is neither an address nor a public key: {exc}") from None


def register_triggers(market: Any, register: Any) -> None:
    def attach(config: ChainTrigger, fire: Any) -> Any:
        def heard(event: str, variables: dict) -> None:
            if event != config.event:
                return
            if config.device is not None and variables.get("device") != config.device:
                return
            if config.contract is not None and variables.get("contract") != config.contract:
                return
            fire(variables)

        return market.listen(heard)

    register("chain", ChainTrigger, attach)


def register_actions(market: Any, register: Any) -> None:
    async def run(config: ChainTx, variables: dict) -> dict[str, Any]:
        chain = market.chain
        if chain is None:
            raise RuntimeError("chain_tx: no chain configured")
        body = config.chain_tx
        tx = await chain.submit(market.identity.controller_key, "transfer",
                                {"to": _address_of(body.to), "amount": body.amount})
        return {"tx": tx.hex()}

    register("chain_tx", ChainTx, run)

"""The market as a built-in plugin: opens market.db, provides the ``Market`` service, follows the
chain and runs rentals (docs/market.md).

It runs with no ``market:`` section (``RUNS_UNCONFIGURED``, like the identity gate and the
anchorer) and idles without a chain or an identity gate. It declares its schema, so ``hub config
check`` names a bad key with its file and line.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from hub import hookimpl

log = logging.getLogger("hub.market")

RUNS_UNCONFIGURED = True


class MarketConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    poll: float = Field(1.0, gt=0, le=600, description="Seconds between looks at the chain and the rentals.")
    receipt_interval: float = Field(10.0, gt=0, le=3600, description="Seconds between the meter receipts of a "
                                    "metered call.")
    pay_timeout: float = Field(30.0, gt=0, le=3600, description="Seconds a metered renter's cheques may lag "
                               "behind its receipts (by more than unpaid_slack) before access ends.")
    unpaid_slack: int = Field(0, ge=0, description="Base units of usage a metered renter may owe beyond its "
                              "latest cheque without being cut off.")
    cheque_grace: float = Field(5.0, ge=0, le=600, description="Seconds after a metered call ends to wait for the "
                                "renter's final cheque before the return.")
    settle_threshold: int = Field(0, ge=0, description="Withdraw from a channel (settle without closing) once the "
                                  "cheques cover this many base units more than was paid; 0: only the returns pay.")
    watchers: list[str] = Field(default_factory=list, description="Full nodes' RPC URLs that answer an "
                                "uncooperative close for this hub (hub.market.cheques).")


@hookimpl
def hub_config_schema() -> type[MarketConfig]:
    return MarketConfig


def _config(hub: Any) -> MarketConfig:
    if isinstance(hub.config, MarketConfig):
        return hub.config
    try:
        return MarketConfig.model_validate(hub.config or {})
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ValueError(f"market.{where}: {first['msg']}") from None


@hookimpl
def hub_setup(hub: Any) -> None:
    identity = hub.service("identity")
    if identity is None:
        hub.log.info("the market is off: no identity gate")
        return
    from hub.market.service import Market
    from hub.market.store import MarketStore

    core = hub._hub  # a built-in part: it reads the meter entities of the devices it rents out

    def read_entity(device_id: str, key: str) -> Any:
        entry = next((e for e in core.entities.for_device(device_id) if e.key == key), None)
        state = core.states.get(entry.entity_id) if entry is not None else None
        return state.value if state is not None and state.available else None

    async def device_receipt(device_id: str, call: bytes, entity: str, since: int) -> Any:
        """A key-holding device signs its own receipt, through its driver (``hub_request_receipt``)."""
        entry = core.devices.get(device_id)
        ctx = core.contexts.get(entry.platform) if entry is not None else None
        if ctx is None or core.plugins.impl(entry.platform, "hub_request_receipt") is None:
            raise RuntimeError(f"{device_id}: its driver is not running or cannot ask for receipts")
        return await core.plugins.call_one(entry.platform, "hub_request_receipt", timeout=core.commands.timeout,
                                           hub=ctx, device_id=device_id.split(":", 1)[1], call=call, entity=entity,
                                           since=since)

    store = MarketStore(hub.hub_data_dir)
    market = Market(store, identity, lambda: hub.service("chain"), now=hub.now, read_entity=read_entity,
                    config=_config(hub), receipt_signer=device_receipt)
    hub.data["market"] = market
    hub.provide("market", market)


@hookimpl
async def hub_run(hub: Any) -> None:
    market = hub.data.get("market")
    if market is None:
        return
    await market.rentals.recover()
    while True:
        try:
            more = await market.step()
        except Exception:  # noqa: BLE001 - logged; the next pass tries again
            log.exception("market: a pass failed")
            more = False
        if not more:
            await asyncio.sleep(market.config.poll)


@hookimpl
def hub_rule_triggers(hub: Any, register: Any) -> None:
    market = hub.data.get("market")
    if market is not None:
        from hub.market.rules import register_triggers

        register_triggers(market, register)


@hookimpl
def hub_rule_actions(hub: Any, register: Any) -> None:
    market = hub.data.get("market")
    if market is not None:
        from hub.market.rules import register_actions

        register_actions(market, register)


@hookimpl
def hub_shutdown(hub: Any) -> None:
    market = hub.data.pop("market", None)
    if market is not None:
        market.store.close()

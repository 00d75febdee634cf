"""The cheque book as a built-in plugin, after the market: opens it beside market.db, hands it to
the market (``market.cheques``: the returns and withdrawals carry its latest cheques) and runs its
follower (:mod:`hub.market.closewatch`: channels noted from final blocks, closes answered, cheques
handed to the watchers of ``market: {watchers: [...]}``).

A plugin of its own so that a failure in following or answering is contained and restarted by the
hub like any plugin's, without stopping the market's rentals; it idles when the market does.
"""

from __future__ import annotations

from typing import Any

from hub import hookimpl

RUNS_UNCONFIGURED = True


@hookimpl
def hub_setup(hub: Any) -> None:
    market, chain, identity = hub.service("market"), hub.service("chain"), hub.service("identity")
    if market is None or chain is None or identity is None:
        hub.log.info("cheques are off: %s", "no market" if market is None else "no chain" if chain is None
                     else "no identity gate")
        return
    from hub.market.cheques import ChequeBook
    from hub.market.closewatch import CloseWatch

    def receipt(receipt_hash: bytes) -> tuple[bytes, int] | None:
        found = market.usage_cost(receipt_hash)
        return (bytes(found["call"]), int(found["cost"])) if found is not None else None

    def ours(contract: bytes) -> bool | None:
        # Known to the market: ours. Not (yet: its follower may lag behind this one): ask the chain.
        return True if market.store.contract(contract) is not None else None

    book = ChequeBook(hub.hub_data_dir / "market" / "market.db", chain.network, receipts=receipt)
    market.cheques = book
    watchers = list(getattr(getattr(market, "config", None), "watchers", []) or [])
    hub.data["book"] = book
    hub.data["watch"] = CloseWatch(chain, book, identity.controller_key, watchers=watchers, ours=ours)
    hub.provide("cheques", hub.data["watch"])  # POST /api/market/watch hands cheques over through it


@hookimpl
async def hub_run(hub: Any) -> None:
    watch = hub.data.get("watch")
    if watch is not None:
        await watch.run()


@hookimpl
def hub_api_routes(hub: Any) -> Any:
    """``GET /api/plugins/cheques/status`` (token): how far the follower is, channels and open calls
    known, the closes it answered, the watchers."""
    watch = hub.data.get("watch")
    if watch is None:
        return None
    from fastapi import APIRouter

    router = APIRouter()

    @router.get("/status")
    def status() -> dict:
        return watch.status()

    return router


@hookimpl
def hub_shutdown(hub: Any) -> None:
    hub.data.pop("watch", None)
    book = hub.data.pop("book", None)
    if book is not None:
        market = hub.service("market")
        if market is not None and getattr(market, "cheques", None) is book:
            market.cheques = None
        book.close()

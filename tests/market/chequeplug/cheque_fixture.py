"""Notes into the hub's own cheque book (``market.cheques``, the one the route checks against) the
channels and calls listed in ``<data>/cheque-fixture.json``, as its follower does from final
blocks, and the receipts into the market's store, as its metering does: so the route and the book can be driven at full
speed without a rental on chain for every renter. Everything the route does is the hub's own code."""

from __future__ import annotations

import asyncio
import json

from hub import hookimpl


@hookimpl
async def hub_run(hub):
    from hub.market.cheques import Call, Channel

    market = hub.service("market")
    while getattr(market, "cheques", None) is None:  # set by the cheques plugin's setup
        await asyncio.sleep(0.05)
    book = market.cheques
    spec = json.loads((hub.hub_data_dir / "cheque-fixture.json").read_text())
    for ch in spec["channels"]:
        book.note_channel(bytes.fromhex(ch["id"]), Channel(bytes.fromhex(ch["renter"]), ch["deposit"]))
    for c in spec["calls"]:
        book.note_call(bytes.fromhex(c["id"]), Call(bytes.fromhex(c["channel"]), bytes.fromhex(c["contract"]),
                                                   bytes.fromhex(c["renter"])))
    for r in spec["receipts"]:  # where the market's metering keeps the receipts it issues
        market.store.add_receipt(bytes.fromhex(r["hash"]), bytes.fromhex(r["call"]), r["price"], 0, r["price"],
                                 r["price"], {})
    (hub.hub_data_dir / "cheque-fixture.noted").write_text("ok")
    await asyncio.Event().wait()  # a plugin's run ends with the hub

"""Stands in for the market's follower in a real ``hub run`` until a test wants the whole market:
opens the hub's cheque book (``<data>/market/market.db``, the chain's network) and notes the
channels, calls and receipts listed in ``<data>/cheque-fixture.json``, as the market does from final
blocks. Everything else (the route, the checks, the store) is the hub's own code."""

from __future__ import annotations

import json

from hub import hookimpl


@hookimpl
def hub_setup(hub):
    from hub.market.cheques import Call, Channel, ChequeBook

    book = ChequeBook(hub.hub_data_dir / "market" / "market.db", hub.service("chain").network)
    spec = json.loads((hub.hub_data_dir / "cheque-fixture.json").read_text())
    for ch in spec["channels"]:
        book.note_channel(bytes.fromhex(ch["id"]), Channel(bytes.fromhex(ch["renter"]), ch["deposit"]))
    for c in spec["calls"]:
        book.note_call(bytes.fromhex(c["id"]), Call(bytes.fromhex(c["channel"]), bytes.fromhex(c["contract"]),
                                                   bytes.fromhex(c["renter"])))
    for r in spec["receipts"]:
        book.note_receipt(bytes.fromhex(r["hash"]), bytes.fromhex(r["call"]), r["price"])
    hub.provide("cheques", book)
    hub.data["book"] = book


@hookimpl
def hub_shutdown(hub):
    book = hub.data.pop("book", None)
    if book is not None:
        book.close()

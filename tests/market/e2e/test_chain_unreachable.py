"""The chain unreachable during metered use: the owner's hub follows a devnet of node processes;
mid-rental every node is killed. The renter keeps using the device and paying with cheques (the hub
checks them against what it last saw of the chain); the session ends, the settlement waits; the
network comes back on its data directories and the return lands with the latest cheque, to the unit."""

from __future__ import annotations

import time

from tests.market.e2e.kit import (FUNDS, METERED_TIME, OWNER, RENTER, RUFF, STATUS, Renter, call, create_contract,
                                  now_ms, pay, wait_until)

TERMS = {**METERED_TIME, "max_duration": 8000}


def test_cheques_flow_while_the_chain_is_down_and_settlement_lands_after(devnet, tmp_path):
    owner, chain = devnet, devnet.chain
    truth = chain.truth
    renter = Renter(tmp_path, owner)
    contract = create_contract(chain, TERMS, endpoint=owner.hub.url)
    called = call(chain, contract, 5 * RUFF)
    record = truth.value("call", called)
    channel = record[3]
    wait_until("the renter's grant", lambda: renter.command("turn_on")[0] == 200, 40, owner.hub.log, chain.log)
    first, answer = pay(owner, called, contract, channel, TERMS)
    assert answer[1]["ok"], answer

    chain.stop()
    wait_until("the hub to see the chain gone", lambda: not owner.hub.get("/api/plugins/chain/head")["connected"], 15)
    latest, offline = first, 0
    while offline < 3 and now_ms() < record[4] + TERMS["max_duration"] - 1000:
        time.sleep(0.5)  # still metered, still paid, still in control: nothing here needs the chain
        signed, answer = pay(owner, called, contract, channel, TERMS)
        assert answer[0] == 200 and answer[1]["ok"], answer
        latest, offline = signed, offline + 1
        assert renter.command("turn_on")[0] == 200
    assert offline >= 2 and latest.statement.call_amount > first.statement.call_amount
    ends = record[4] + TERMS["max_duration"]
    wait_until("the session's end", lambda: now_ms() > ends + 500, 15)
    assert truth.value("call", called)[STATUS] == "open"  # nothing could settle while the chain was away

    chain.start()
    wait_until("the return once the chain is back", lambda: truth.value("call", called)[STATUS] == "returned", 40,
               owner.hub.log, chain.log)
    paid = latest.statement.call_amount
    assert truth.balance(OWNER) == FUNDS - truth.fees(OWNER) + paid
    channel_left = (lambda c: c[2] - c[3])(truth.value("chan", channel))
    assert truth.balance(RENTER) + channel_left == FUNDS - truth.fees(RENTER) - paid
    held, supply = truth.supply_holds()
    assert held == supply


def test_the_hub_restarts_while_the_chain_is_away_and_keeps_the_rental(devnet, tmp_path):
    """Both faults at once: the devnet is gone and the owner's hub is killed -9 and started again
    without it. The renter's grant and the cheques kept survive on the hub alone; once the network is
    back the return lands with the latest cheque."""
    owner, chain = devnet, devnet.chain
    truth = chain.truth
    renter = Renter(tmp_path, owner)
    contract = create_contract(chain, TERMS, endpoint=owner.hub.url)
    called = call(chain, contract, 5 * RUFF)
    record = truth.value("call", called)
    channel = record[3]
    wait_until("the renter's grant", lambda: renter.command("turn_on")[0] == 200, 40, owner.hub.log, chain.log)
    first, answer = pay(owner, called, contract, channel, TERMS)
    assert answer[1]["ok"], answer

    chain.stop()
    owner.hub.kill()
    owner.start()  # no chain to follow: the hub starts anyway, and says so
    assert renter.command("turn_on")[0] == 200  # the grant is the light node's, on disk
    time.sleep(0.5)
    latest, answer = pay(owner, called, contract, channel, TERMS)
    assert answer[0] == 200 and answer[1]["ok"], answer
    assert latest.statement.amount > first.statement.amount

    wait_until("the session's end", lambda: now_ms() > record[4] + TERMS["max_duration"] + 500, 20)
    refused = renter.command("turn_on")
    assert refused[0] == 403, refused
    chain.start()
    wait_until("the return once the chain is back", lambda: truth.value("call", called)[STATUS] == "returned", 40,
               owner.hub.log, chain.log)
    paid = latest.statement.call_amount
    assert truth.value("call", called)[7] == paid
    assert truth.balance(OWNER) == FUNDS - truth.fees(OWNER) + paid
    held, supply = truth.supply_holds()
    assert held == supply

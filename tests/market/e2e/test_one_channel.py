"""One renter deposit for several of an owner's contracts (better than µRaiden's channel per
device): two metered contracts on the plug, the second call tops up nothing and rides the first
call's channel; cheques are cumulative over the channel and per call; both sessions end and are
returned, and the owner is paid exactly the channel's last cheque, no unit twice."""

from __future__ import annotations

import time

from hub.crypto.statements import receipt_hash
from tests.market.e2e.kit import (FUNDS, METERED_TIME, OWNER, RENTER, RUFF, STATUS, Renter, call, cheque,
                                  create_contract, latest_receipt, price_of, wait_until)

TERMS = {**METERED_TIME, "max_duration": 4000}


def test_one_channel_pays_for_two_contracts(embedded, tmp_path):
    owner, chain = embedded, embedded.chain
    truth, genesis = chain.truth, chain.genesis
    renter = Renter(tmp_path, owner)
    on = create_contract(chain, TERMS, commands=("outlet.turn_on",), endpoint=owner.hub.url)
    off = create_contract(chain, TERMS, commands=("outlet.turn_off",), endpoint=owner.hub.url)
    first = call(chain, on, 5 * RUFF)
    second = call(chain, off, 0)  # the channel already holds the deposit both contracts ask for
    channel = truth.value("call", first)[3]
    assert truth.value("call", second)[3] == channel and truth.value("chan", channel)[2] == 5 * RUFF
    wait_until("both grants", lambda: renter.command("turn_on")[0] == 200 and renter.command("turn_off")[0] == 200,
               15, owner.hub.log)

    costs = {first: 0, second: 0}
    contracts = {first: on, second: off}
    last = None
    for _ in range(3):
        for called in (first, second):
            receipt = latest_receipt(owner, called)
            costs[called] = price_of(TERMS, receipt.statement.reading)
            signed = cheque(genesis, channel=channel, contract=contracts[called], call=called,
                            receipt=receipt_hash(receipt.statement), amount=sum(costs.values()),
                            call_amount=costs[called])
            answer = owner.hub.request("POST", "/api/market/cheques", signed.to_json(), auth=False)
            assert answer[0] == 200 and answer[1]["ok"], answer
            last = signed
        time.sleep(0.4)

    for called in (first, second):
        wait_until("both returns", lambda c=called: truth.value("call", c)[STATUS] == "returned", 30, owner.hub.log)
    total = last.statement.amount
    assert [truth.value("call", c)[7] for c in (first, second)] == [costs[first], costs[second]]  # used, per call
    assert total == sum(costs.values())
    assert truth.value("chan", channel)[3] == total  # withdrawn: the channel's last cheque, once
    assert truth.balance(OWNER) == FUNDS - truth.fees(OWNER) + total
    assert truth.balance(RENTER) + (5 * RUFF - total) == FUNDS - truth.fees(RENTER) - total
    held, supply = truth.supply_holds()
    assert held == supply

"""Kill -9 of the owner's hub (with its embedded chain, or following a devnet) at a random point of a prepaid
rental, then a restart on the same data directory and port: the grant is not lost while the paid
window lasts, access ends with the window, the call is returned once, and the balances on chain are
what the terms say, to the unit: the owner gains the price of every window started once access was
given, the renter loses that and the fees it paid, the supply is whole."""

from __future__ import annotations

import random
import time

import pytest

from tests.market.e2e.kit import (FUNDS, OWNER, RENTER, RUFF, STATUS, Renter, call, create_contract, market_call,
                                  now_ms, reason, wait_until)

TERMS = {"kind": "prepaid", "price": 1 * RUFF, "window": 3000, "max_duration": 6000}
DEPOSIT = 3 * RUFF  # pays min(3, 6000 // 3000) = 2 windows: 2 RUFF used, 1 RUFF back


# Kill at 1.0 s (in the window), 7.2 s (after it), 4.7 s (near its end); the devnet's chain lives on.
@pytest.mark.parametrize("where, seed", [("embedded", 1), ("embedded", 2), ("devnet", 5)])
def test_kill_9_at_a_random_point_of_a_rental(where, seed, request, tmp_path):
    owner = request.getfixturevalue(where)
    chain = owner.chain
    truth = chain.truth
    renter = Renter(tmp_path, owner)
    pause = random.Random(seed).uniform(0, 7.5)  # seconds after the call is sent: before, during or after the window

    contract = create_contract(chain, TERMS, commands=("outlet.turn_on",), endpoint=owner.hub.url)
    called = call(chain, contract, DEPOSIT)
    time.sleep(pause)
    owner.hub.kill()
    owner.start()

    record = truth.value("call", called)
    ends = record[4] + TERMS["window"] * record[5]  # the call's block time + the paid windows
    assert record[5] == 2
    if now_ms() < ends - 2000:  # still inside the paid window, with room for the request: the grant survived
        answer = wait_until("the renter's grant after the restart",
                            lambda: (a := renter.command("turn_on"))[0] == 200 and a, 5, owner.hub.log)
        assert answer[1]["ok"] is True
    # After the window nobody's command from the renter passes, whatever the crash did.
    wait_until("the end of the paid window", lambda: now_ms() > ends + 200, 15)
    refused = renter.command("turn_on")
    assert refused[0] == 403 and reason(refused) in ("not_granted", "not_authorised"), refused

    wait_until("the hub's return on chain", lambda: truth.value("call", called)[STATUS] == "returned", 30,
               owner.hub.log)
    # The terms: a started window is a used one, counted from when access was given (a crash before
    # that delays it; access given only after the paid windows costs nothing), up to the windows paid.
    granted = market_call(owner, called)[1]["granted_at"]
    started = 0 if granted is None or granted >= ends else min(max(-(-(ends - granted) // TERMS["window"]), 1), 2)
    charge = TERMS["price"] * started
    assert truth.value("call", called)[7] == charge
    assert truth.balance(OWNER) == FUNDS - truth.fees(OWNER) + charge
    assert truth.balance(RENTER) == FUNDS - truth.fees(RENTER) - charge
    returns = [tx for tx in truth.txs_by(OWNER) if tx.type == "return"]
    assert len(returns) == 1, returns  # answered once, even if the crash came after sending it
    held, supply = truth.supply_holds()
    assert held == supply
    assert "Traceback" not in owner.hub.log()

"""Cheating renters against the owner's ``hub run`` (embedded chain, or following a devnet):
commands outside the contract, a cheque that does not rise, a cheque above the deposit (refused by the hub), a close with an older
cheque (answered by the hub with the newer one within CHALLENGE_PERIOD) and a second close
(refused by the chain). In the end the owner is paid exactly what the renter's latest cheque says."""

from __future__ import annotations

import time

import pytest

from tests.market.e2e.kit import (FUNDS, METERED_TIME, OWNER, RENTER, RUFF, STRANGER, Renter, call, cheque,
                                  create_contract, fate_of, market_call, now_ms, pay, reason, wait_until)

TERMS = {**METERED_TIME, "max_duration": 8000}


@pytest.mark.parametrize("where", ["embedded", "devnet"])
def test_cheating_renter_is_refused_answered_and_pays_its_latest_cheque(where, request, tmp_path):
    owner = request.getfixturevalue(where)
    chain = owner.chain
    truth, genesis = chain.truth, chain.genesis
    renter = Renter(tmp_path, owner)
    contract = create_contract(chain, TERMS, commands=("outlet.turn_on",), endpoint=owner.hub.url)
    called = call(chain, contract, 5 * RUFF)
    channel = truth.value("call", called)[3]

    wait_until("the renter's grant", lambda: renter.command("turn_on")[0] == 200, 15, owner.hub.log)
    outside = renter.command("turn_off")  # not a command of the contract
    assert outside[0] == 403 and reason(outside) == "not_granted", outside
    assert market_call(owner, called)[0] == 200

    first, answer = pay(owner, called, contract, channel, TERMS)
    assert answer[0] == 200 and answer[1]["ok"], answer
    time.sleep(0.5)  # more usage to pay for (a receipt is made at most every 0.2 s)
    latest, answer = pay(owner, called, contract, channel, TERMS)
    assert answer[0] == 200 and answer[1]["ok"] and not answer[1].get("duplicate"), answer
    assert latest.statement.amount > first.statement.amount

    again = owner.hub.request("POST", "/api/market/cheques", first.to_json(), auth=False)
    assert again[0] == 409 and again[1]["reason"] == "not_rising", again
    above = cheque(genesis, channel=channel, contract=contract, call=called, receipt=latest.statement.receipt,
                   amount=5 * RUFF + 1, call_amount=5 * RUFF + 1)
    refused = owner.hub.request("POST", "/api/market/cheques", above.to_json(), auth=False)
    assert refused[0] == 409 and refused[1]["reason"] == "above_deposit", refused

    # The renter walks away, closing the channel with its first (smaller) cheque.
    assert fate_of(chain, RENTER, "settle", {"channel": channel, "cheque": first.to_body(), "close": True}) \
        == "included"
    twice = fate_of(chain, RENTER, "settle", {"channel": channel, "cheque": first.to_body(), "close": True})
    assert "channel_closing" in twice, twice
    # The owner's hub answers with the latest cheque it holds, within the challenge.
    wait_until("the hub's answer to the close", lambda: truth.value("chan", channel)[4] == latest.statement.amount,
               15, owner.hub.log)
    answered = truth.value("chan", channel)
    if not answered[7]:  # the answer left the challenge running: anyone pays out once it is over
        early = fate_of(chain, STRANGER, "refund", {"target": channel})
        assert "challenge_running" in early, early
        wait_until("the challenge to end", lambda: now_ms() > answered[5] + 300, 15)
        assert fate_of(chain, STRANGER, "refund", {"target": channel}) == "included"
    # (the hub's answer as payee may also close and pay out at once: nothing is left to challenge)
    late = fate_of(chain, RENTER, "settle", {"channel": channel, "cheque": first.to_body(), "close": True})
    assert "channel_closed" in late, late

    time.sleep(1)  # whatever the hub still sends for the call (its return) lands in the next blocks
    paid = latest.statement.amount
    assert truth.balance(OWNER) == FUNDS - truth.fees(OWNER) + paid
    assert truth.balance(RENTER) == FUNDS - truth.fees(RENTER) - paid
    held, supply = truth.supply_holds()
    assert held == supply

"""Cheating or absent owners, against a devnet of node processes: an owner whose hub never answers
a call loses nothing but the call (the renter's ``refund`` takes the deposit back once
REFUND_TIMEOUT has passed, not before), and an owner who claims more than the renter's cheques
(or the paid windows) allow is refused by the chain, to the unit."""

from __future__ import annotations

from tests.market.e2e.kit import (FUNDS, OWNER, PREPAID, RENTER, RUFF, STATUS, Renter, call, cheque, consent,
                                  create_contract, fate_of, wait_until)


def test_no_return_the_renter_takes_the_deposit_back_after_the_timeout(devnet, tmp_path):
    owner, chain = devnet, devnet.chain
    truth = chain.truth
    contract = create_contract(chain, PREPAID)
    owner.hub.stop()  # the owner's hub goes away for good: nobody will `return` this call

    deposit = 3 * RUFF
    called = call(chain, contract, deposit)
    record = truth.value("call", called)
    assert record[1] == RENTER.public_key and record[2] == deposit and record[STATUS] == "open", record
    assert truth.balance(RENTER) == FUNDS - deposit - truth.fees(RENTER)
    held, supply = truth.supply_holds()
    assert held == supply  # the deposit is in escrow, not gone

    renter = Renter(tmp_path, owner)
    refund = ["market", "refund", called.hex(), "--key", str(renter.key_file), *renter.chain_args, "--yes"]
    early = renter.cli(*refund, ok=False)
    assert "refund_too_early" in early, early
    # The controller may answer until the paid windows are over, and REFUND_TIMEOUT after that.
    due = record[4] + PREPAID["window"] * record[5] + truth.genesis.rules().REFUND_TIMEOUT
    wait_until("the refund timeout to pass on chain", lambda: chain.get("/head")["timestamp"] > due, 20)
    renter.cli(*refund)
    assert truth.value("call", called)[STATUS] == "refunded"
    assert truth.balance(RENTER) == FUNDS - truth.fees(RENTER)  # every unit of the deposit is back
    assert truth.balance(OWNER) == FUNDS - truth.fees(OWNER)
    again = fate_of(chain, RENTER, "refund", {"target": called})
    assert "call_not_open" in again, again  # refunded once
    held, supply = truth.supply_holds()
    assert held == supply


def test_a_return_above_what_the_renter_signed_or_paid_for_is_refused(devnet):
    owner, chain = devnet, devnet.chain
    truth, genesis = chain.truth, chain.truth.genesis
    owner.hub.stop()  # the test plays the owner, by hand

    # Prepaid: 3 RUFF of deposit pays 2 windows (max_duration 4 s of 2 s windows): at most 2 RUFF.
    prepaid = create_contract(chain, PREPAID)
    paid = call(chain, prepaid, 3 * RUFF)
    over = fate_of(chain, OWNER, "return", {"call": paid, "used": 2 * RUFF + 1, "result": "",
                                            "consent": consent(genesis, contract=prepaid, call=paid).to_body()})
    assert "used_above_cap" in over, over
    assert fate_of(chain, OWNER, "return", {"call": paid, "used": 2 * RUFF, "result": "ok",
                                            "consent": consent(genesis, contract=prepaid, call=paid).to_body()}) \
        == "included"

    # Metered: the return may claim at most its cheque's call_amount.
    metered = create_contract(chain, {"kind": "metered", "rate": RUFF, "meter": "", "interval": 1000,
                                      "deposit": 5 * RUFF, "max_duration": 60_000})
    used = call(chain, metered, 5 * RUFF)
    channel = truth.value("call", used)[3]
    assert truth.value("chan", channel)[2] == 5 * RUFF
    signed = cheque(genesis, channel=channel, contract=metered, call=used, amount=1_500_000, call_amount=1_500_000)
    body = {"call": used, "result": "", "consent": consent(genesis, contract=metered, call=used).to_body(),
            "cheque": signed.to_body()}
    over = fate_of(chain, OWNER, "return", {**body, "used": 1_500_001})
    assert "used_above_cap" in over, over
    assert fate_of(chain, OWNER, "return", {**body, "used": 1_500_000}) == "included"

    fees_renter, fees_owner = truth.fees(RENTER), truth.fees(OWNER)
    assert truth.balance(OWNER) == FUNDS - fees_owner + 2 * RUFF + 1_500_000
    # The renter: 1 RUFF of the prepaid escrow came back; 3.5 RUFF are still its own, in the channel.
    assert truth.balance(RENTER) == FUNDS - fees_renter - 2 * RUFF - 5 * RUFF
    chan = truth.value("chan", channel)
    assert chan[2] - chan[3] == 5 * RUFF - 1_500_000

    # A cheque above the deposit (a renter's mistake the hub would refuse) is capped on chain.
    above = cheque(genesis, channel=channel, contract=metered, call=used, amount=7 * RUFF, call_amount=1_500_000)
    assert fate_of(chain, OWNER, "settle", {"channel": channel, "cheque": above.to_body(), "close": False}) \
        == "included"
    chan = truth.value("chan", channel)
    assert chan[3] == chan[2] == 5 * RUFF  # withdrawn up to the deposit, not a unit more
    assert truth.balance(OWNER) == FUNDS - truth.fees(OWNER) + 2 * RUFF + 5 * RUFF
    held, supply = truth.supply_holds()
    assert held == supply

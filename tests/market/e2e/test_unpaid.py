"""A renter who never pays for metered use: the owner's hub cuts it off once a receipt has gone
unpaid for ``pay_timeout``, and the renter's channel deposit is not touched (there is no cheque to
redeem), the hub sends no return the chain would refuse; the renter's refund closes the call after
the timeout."""

from __future__ import annotations

from tests.market.e2e.kit import (FUNDS, METERED_TIME, OWNER, RENTER, RUFF, Embedded, Owner, Renter, call,
                                  create_contract, fate_of, market_call, now_ms, reason, wait_until)

TERMS = {**METERED_TIME, "max_duration": 5000}


def test_a_renter_who_does_not_pay_is_cut_off(tmp_path):
    chain = Embedded(tmp_path / "owner")
    owner = Owner(tmp_path / "owner", chain, extra="market:\n  pay_timeout: 1\n  receipt_interval: 0.5\n"
                                                   "  unpaid_slack: 0\n  cheque_grace: 0.5\n").start()
    try:
        owner.bind_on_chain()
        truth = chain.truth
        renter = Renter(tmp_path, owner)
        contract = create_contract(chain, TERMS, endpoint=owner.hub.url)
        called = call(chain, contract, 5 * RUFF)
        channel = truth.value("call", called)[3]
        wait_until("the renter's grant", lambda: renter.command("turn_on")[0] == 200, 15, owner.hub.log)
        # No cheque ever: the hub ends the session, well before its 60 s.
        cut = wait_until("the unpaid renter cut off", lambda: (a := renter.command("turn_on"))[0] == 403 and a, 15,
                         owner.hub.log)
        assert reason(cut) == "not_granted", cut
        assert now_ms() < truth.value("call", called)[4] + TERMS["max_duration"]
        chan = truth.value("chan", channel)
        assert chan[3] == 0  # nothing withdrawn: nothing was signed
        assert truth.balance(OWNER) == FUNDS - truth.fees(OWNER)
        assert truth.balance(RENTER) == FUNDS - truth.fees(RENTER) - 5 * RUFF  # still its own, in the channel
        # With no cheque there is nothing to return (the chain would refuse it): the hub says so, no error.
        wait_until("the hub to give up the return", lambda: market_call(owner, called)[1]["state"] == "unpaid", 10,
                   owner.hub.log)
        assert " ERROR " not in owner.hub.log(), owner.hub.log()
        # The renter closes the call on chain after the timeout; the hub follows.
        record = truth.value("call", called)
        due = record[4] + TERMS["max_duration"] + chain.genesis.rules().REFUND_TIMEOUT
        wait_until("the refund timeout", lambda: now_ms() > due + 300, 15)
        assert fate_of(chain, RENTER, "refund", {"target": called}) == "included"
        wait_until("the hub to see the refund", lambda: market_call(owner, called)[1]["state"] == "refunded", 10)
        assert truth.balance(RENTER) == FUNDS - truth.fees(RENTER) - 5 * RUFF  # the channel still holds it
        assert "Traceback" not in owner.hub.log()
    finally:
        owner.hub.stop()

"""Kill -9 of the owner's hub (and its embedded chain) at a random point of a metered rental paid by
cheques: the hub keeps every cheque it said it kept, takes the renter's next ones after the restart,
closes the session at its end and returns once, with its latest cheque: the owner is paid exactly
that cheque's amount for the call, the rest of the deposit stays the renter's."""

from __future__ import annotations

import random
import time

import pytest

from tests.market.e2e.kit import (FUNDS, METERED_TIME, OWNER, PLUG, RENTER, RUFF, STATUS, Renter, call, create_contract,
                                  now_ms, pay, reason, wait_until)

TERMS = {**METERED_TIME, "max_duration": 6000}


@pytest.mark.parametrize("seed", [1, 4])
def test_kill_9_at_a_random_point_of_a_metered_rental(embedded, tmp_path, seed):
    owner, chain = embedded, embedded.chain
    truth = chain.truth
    renter = Renter(tmp_path, owner)
    kill_at = random.Random(seed).uniform(0.5, 7.0)  # s after the grant: during the session, or as it ends

    contract = create_contract(chain, TERMS, endpoint=owner.hub.url)
    called = call(chain, contract, 5 * RUFF)
    record = truth.value("call", called)
    channel, ends = record[3], record[4] + TERMS["max_duration"]
    wait_until("the renter's grant", lambda: renter.command("turn_on")[0] == 200, 15, owner.hub.log)
    # The session runs from the call's block, not from the grant: a grant that comes late (a loaded
    # machine) still gets its kill during the session or as it ends, as the seed meant.
    kill_at = min(kill_at, max(0.0, (ends + 1000 - now_ms()) / 1000))

    started, killed = time.monotonic(), False
    signed_amounts, accepted = [], 0
    while now_ms() < ends + 1500:
        if not killed and time.monotonic() - started > kill_at:
            owner.hub.kill()
            owner.start()
            killed = True
        try:
            signed, answer = pay(owner, called, contract, channel, TERMS)
        except (AssertionError, OSError):  # no receipt to pay: the call is over (or the hub still starting)
            time.sleep(0.3)
            continue
        signed_amounts.append(signed.statement.call_amount)
        if answer[0] == 200 and answer[1]["ok"]:
            accepted = max(accepted, signed.statement.call_amount)
        time.sleep(0.3)
    assert killed and accepted > 0

    refused = renter.command("turn_on")  # the session is over, whatever the crash did
    assert refused[0] == 403 and reason(refused) in ("not_granted", "not_authorised"), refused
    wait_until("the return", lambda: truth.value("call", called)[STATUS] == "returned", 30, owner.hub.log)
    used = truth.value("call", called)[7]
    assert used >= accepted and used in signed_amounts, (used, accepted, signed_amounts)
    assert truth.balance(OWNER) == FUNDS - truth.fees(OWNER) + used
    left = (lambda c: c[2] - c[3])(truth.value("chan", channel))
    assert left == 5 * RUFF - used
    assert truth.balance(RENTER) + left == FUNDS - truth.fees(RENTER) - used
    held, supply = truth.supply_holds()
    assert held == supply
    assert "Traceback" not in owner.hub.log()


def test_the_renter_cli_rides_out_a_kill_9_of_the_owner_hub(embedded, tmp_path):
    """``hub market rent`` streaming cheques while the owner's hub is killed -9 and restarted: the CLI
    says the hub is away, keeps going, ends the rental with a final cheque, and the return takes
    exactly the renter's last cheque."""
    owner, truth = embedded, embedded.chain.truth
    renter = Renter(tmp_path, owner)
    contract = owner.json("market", "offer", PLUG, "--commands", "outlet.turn_on", "--rate", "0.1", "--per", "1s",
                          "--deposit", "3", "--max", "1m", "--endpoint", owner.hub.url, "--yes", "--wait")["contract"]
    wait_until("the offer on chain", lambda: truth.value("contract", bytes.fromhex(contract)), 20)
    rent = renter.popen("market", "rent", contract, "--deposit", "3", "--for", "8s", "--every", "0.4", "--key",
                        str(renter.key_file), "--yes")
    try:
        wait_until("cheques flowing", lambda: renter.log().count("cost ") >= 2, 30, renter.log, owner.hub.log)
        owner.hub.kill()
        owner.start()
        assert rent.wait(60) == 0, renter.log()
    finally:
        if rent.poll() is None:
            rent.kill()
    assert "Traceback" not in renter.log(), renter.log()
    called = bytes.fromhex(next(line.split()[1] for line in renter.log().splitlines() if line.startswith("call ")))
    wait_until("the return", lambda: truth.value("call", called)[STATUS] == "returned", 30, owner.hub.log)
    last = renter.json("market", "channel", "--key", str(renter.key_file))[0]["signed"]
    assert truth.value("call", called)[7] == last > 0
    assert truth.balance(OWNER) == FUNDS - truth.fees(OWNER) + last

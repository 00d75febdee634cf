"""The whole prepaid flow across real processes, as people type it: the owner's ``hub run`` follows
a devnet of node processes as a light client and offers the demo plug from its CLI; a renter on
another machine (its own data directory and key, only the node's and the hub's addresses) finds the
offer, rents it, controls the plug with signed commands inside the grant and is refused outside it
and after the window; the hub's return pays the owner exactly price × windows; the renter reviews;
the owner's earnings show the payment."""

from __future__ import annotations

import pytest

from tests.market.e2e.kit import (FUNDS, OWNER, PLUG, PLUG_KEY, RENTER, RUFF, STATUS, Renter, market_call, now_ms,
                                  reason, wait_until)


@pytest.mark.parametrize("where", ["embedded", "devnet"])
def test_offer_rent_control_return_review_and_earnings(where, request, tmp_path):
    owner = request.getfixturevalue(where)
    chain = owner.chain
    truth = chain.truth
    renter = Renter(tmp_path, owner)

    offered = owner.json("market", "offer", PLUG, "--commands", "outlet.turn_on", "--price", "1", "--window", "3s",
                         "--max", "6s", "--endpoint", owner.hub.url, "--yes")
    contract = offered["contract"]
    rpc = renter.chain_args
    listed = wait_until("the offer on chain",
                        lambda: [o for o in renter.json("market", "offers", *rpc) if o["id"] == contract], 20)
    assert listed[0]["device"] == PLUG_KEY.public_key.hex() and listed[0]["controller"] == OWNER.public_key.hex()

    out = renter.cli("market", "rent", contract, "--deposit", "3", "--key", str(renter.key_file), *rpc, "--yes",
                     timeout=90)
    assert "fee of the call transaction" in out and "access granted" in out, out
    called = bytes.fromhex(next(line.split()[1] for line in out.splitlines() if line.startswith("call ")))
    record = truth.value("call", called)
    assert record[5] == 2  # 3 RUFF pays min(3, 6 s // 3 s) = 2 windows

    device = ["device", "call", PLUG, "outlet"]
    key = ["--key", str(renter.key_file), "--url", owner.hub.url]
    renter.cli(*device, "turn_on", *key)
    wait_until("the plug on", lambda: owner.outlet() == "on", 5)
    outside = renter.cli(*device, "turn_off", *key, ok=False)
    assert "not_granted" in outside, outside

    ends = record[4] + 3000 * record[5]
    wait_until("the end of the paid window", lambda: now_ms() > ends + 300, 15)
    after = renter.cli(*device, "turn_on", *key, ok=False)
    assert "not_granted" in after or "not_authorised" in after, after

    wait_until("the hub's return", lambda: truth.value("call", called)[STATUS] == "returned", 30, owner.hub.log)
    assert truth.balance(OWNER) == FUNDS - truth.fees(OWNER) + 2 * RUFF
    assert truth.balance(RENTER) == FUNDS - truth.fees(RENTER) - 2 * RUFF

    renter.cli("market", "review", called.hex(), "--comment", "it flickered", "--key", str(renter.key_file), *rpc,
               "--yes")
    reviews = lambda key: list(truth.value("rev", key) or [])  # noqa: E731 - (returned calls, negative reviews)
    wait_until("the review on chain", lambda: reviews(bytes.fromhex(contract)) == [1, 1], 20)
    assert reviews(PLUG_KEY.public_key) == [1, 1]

    earned = wait_until("the payment in the owner's earnings", lambda: owner.json("market", "earnings"), 10,
                        owner.hub.log, lambda: str(owner.hub.get("/api/market/earnings")))
    assert [(row["call"], row["amount"]) for row in earned] == [(called.hex(), 2 * RUFF)], earned
    csv = owner.cli("market", "earnings", "--csv")
    assert called.hex() in csv and "2.000000" in csv, csv
    held, supply = truth.supply_holds()
    assert held == supply


def test_metered_rent_streams_cheques_and_the_return_takes_the_last(devnet, tmp_path):
    """``hub market rent`` on a time-metered offer: the CLI pays the hub's receipts with cheques as
    the rental runs, ends it after --for with a final cheque, and the owner's return takes exactly
    what the renter's last cheque says; the rest stays in the renter's channel. On a devnet only: on
    the embedded chain, tests/market/test_market_cli_process.py's metered test runs the same rental
    and checks more (every cheque taken, the return to the unit, the channel closed and paid out)."""
    owner = devnet
    truth = owner.chain.truth
    renter = Renter(tmp_path, owner)
    contract = owner.json("market", "offer", PLUG, "--commands", "outlet.turn_on,outlet.turn_off", "--rate", "0.1",
                          "--per", "1s", "--deposit", "2", "--max", "1m", "--endpoint", owner.hub.url, "--yes",
                          "--wait")["contract"]
    wait_until("the offer on chain", lambda: truth.value("contract", bytes.fromhex(contract)), 20)
    out = renter.cli("market", "rent", contract, "--deposit", "2", "--for", "3s", "--every", "0.5", "--key",
                     str(renter.key_file), *renter.chain_args, "--yes", timeout=120)
    assert "access granted" in out and "ended" in out, out
    called = bytes.fromhex(next(line.split()[1] for line in out.splitlines() if line.startswith("call ")))
    wait_until("the hub's return", lambda: truth.value("call", called)[STATUS] == "returned", 30, owner.hub.log)
    channels = renter.json("market", "channel", "--key", str(renter.key_file), *renter.chain_args)
    assert len(channels) == 1, channels
    signed = channels[0]["signed"]  # the renter's own record of its last cheque
    used = truth.value("call", called)[7]
    assert used == signed and 0 < used <= 2 * RUFF, (used, signed, out)
    assert truth.balance(OWNER) == FUNDS - truth.fees(OWNER) + used
    left = (lambda c: c[2] - c[3])(truth.value("chan", bytes.fromhex(channels[0]["id"])))
    assert truth.balance(RENTER) + left == FUNDS - truth.fees(RENTER) - used
    held, supply = truth.supply_holds()
    assert held == supply


def test_a_renter_who_ends_a_prepaid_rental_early_pays_the_windows_started(embedded, tmp_path):
    """``hub market end`` right after a rental of three 5-second windows starts: access closes at once
    (a newer grant ends the old one), the return charges the windows started by then (one, or two on
    a machine slow enough to take 5 s over the end) and gives the rest back. The windows cost no wall
    time (the end closes the rental), so they are long enough for a loaded machine."""
    owner, truth = embedded, embedded.chain.truth
    renter = Renter(tmp_path, owner)
    contract = owner.json("market", "offer", PLUG, "--commands", "outlet.turn_on", "--price", "1", "--window", "5s",
                          "--max", "15s", "--endpoint", owner.hub.url, "--yes", "--wait")["contract"]
    wait_until("the offer on chain", lambda: truth.value("contract", bytes.fromhex(contract)), 20)
    out = renter.cli("market", "rent", contract, "--deposit", "3", "--key", str(renter.key_file), "--yes")
    called = bytes.fromhex(next(line.split()[1] for line in out.splitlines() if line.startswith("call ")))
    assert renter.command("turn_on")[0] == 200
    renter.cli("market", "end", called.hex(), "--key", str(renter.key_file), "--wait", "30")
    record = truth.value("call", called)
    assert record[STATUS] == "returned" and record[5] == 3, record
    refused = renter.command("turn_on")
    assert refused[0] == 403 and reason(refused) == "not_granted", refused
    seen = market_call(owner, called)[1]  # when the hub gave and closed the access, on its clock
    ended, granted = seen["ended_at"], seen["granted_at"]
    assert ended < record[4] + 15_000  # before the paid three windows were over
    started_windows = max(-(-(ended - granted) // 5000), 1)  # a started window is a used window
    assert 1 <= started_windows < 3 and record[7] == started_windows * RUFF, (record, ended)
    assert truth.balance(OWNER) == FUNDS - truth.fees(OWNER) + record[7]
    assert truth.balance(RENTER) == FUNDS - truth.fees(RENTER) - record[7]

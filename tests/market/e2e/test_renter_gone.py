"""The renter goes away mid-rental (its ``hub market rent`` process killed -9 while it streams
cheques): the owner's hub stops waiting once a receipt goes unpaid for ``pay_timeout``, closes the
access and returns with the last cheque it kept: the owner is paid exactly that cheque, which the
renter's own cheque book also shows as its last one."""

from __future__ import annotations

import signal

from tests.market.e2e.kit import (FUNDS, OWNER, PLUG, RENTER, STATUS, Embedded, Owner, Renter, reason,
                                  wait_until)


def test_the_renter_vanishes_and_is_charged_its_last_cheque(tmp_path):
    chain = Embedded(tmp_path / "owner")
    owner = Owner(tmp_path / "owner", chain,
                  extra="market:\n  pay_timeout: 1.5\n  receipt_interval: 0.5\n  cheque_grace: 0.5\n").start()
    rent = None
    try:
        owner.bind_on_chain()
        truth = chain.truth
        renter = Renter(tmp_path, owner)
        contract = owner.json("market", "offer", PLUG, "--commands", "outlet.turn_on", "--rate", "0.1", "--per", "1s",
                              "--deposit", "3", "--max", "1m", "--endpoint", owner.hub.url, "--yes",
                              "--wait")["contract"]
        wait_until("the offer on chain", lambda: truth.value("contract", bytes.fromhex(contract)), 20)
        rent = renter.popen("market", "rent", contract, "--deposit", "3", "--every", "0.3", "--key",
                            str(renter.key_file), *renter.chain_args, "--yes")
        wait_until("a few cheques paid", lambda: renter.log().count("cost ") >= 3, 30, renter.log, owner.hub.log)
        rent.send_signal(signal.SIGKILL)  # no final cheque, no `end`: the renter is just gone
        rent.wait(5)
        called = bytes.fromhex(next(line.split()[1] for line in renter.log().splitlines() if line.startswith("call ")))

        wait_until("the hub's return", lambda: truth.value("call", called)[STATUS] == "returned", 30, owner.hub.log)
        cut = renter.command("turn_on")
        assert cut[0] == 403 and reason(cut) == "not_granted", cut
        last = renter.json("market", "channel", "--key", str(renter.key_file), *renter.chain_args)[0]["signed"]
        used = truth.value("call", called)[7]
        # The last cheque the hub kept: the renter's last one, unless the kill came between signing
        # one and sending it (then the one before, a fraction of a second of use less).
        assert 0 < used <= last and last - used < 100_000, (used, last)
        assert truth.balance(OWNER) == FUNDS - truth.fees(OWNER) + used
        channel = truth.value("call", called)[3]
        left = (lambda c: c[2] - c[3])(truth.value("chan", channel))
        assert truth.balance(RENTER) + left == FUNDS - truth.fees(RENTER) - used
    finally:
        if rent is not None and rent.poll() is None:
            rent.kill()
        owner.hub.stop()

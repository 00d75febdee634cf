"""The owner's hub starts before the node it follows answers: a renter's call made meanwhile is
served once the node is up, and a close with an old cheque is answered with the latest. The
market's (and the cheque follower's) first look at the chain came only then, and started at the
chain's final block of that moment, past the call: the renter paid and was never served (CI met it
under load, where the first look lagged the hub's start by a poll or more)."""

from __future__ import annotations

import os
import subprocess
import time

from tests.hubproc import hub_command
from tests.market.e2e.kit import (METERED_TIME, RENTER, RUFF, Devnet, Owner, Renter, call, create_contract, fate_of,
                                  pay, wait_until)

TERMS = {**METERED_TIME, "max_duration": 8000}


class LateNode(Devnet):
    """Two producers, and a third node that produces nothing: the owner's hub follows its RPC,
    which answers only once :meth:`start_late` ran."""

    def __init__(self, root, **kw) -> None:
        from hub.chain.devnet_cli import free_ports

        super().__init__(root, **kw)
        self.late_p2p, self.late_rpc = free_ports(2)
        self.late: subprocess.Popen | None = None

    def config(self) -> str:
        return f"chain:\n  rpc: http://127.0.0.1:{self.late_rpc}\n  genesis: {self.root / 'g' / 'genesis.json'}\n"

    def start_late(self) -> None:
        peers = ",".join(f"127.0.0.1:{p}" for p in self.p2p)
        with open(self.root / "late.log", "a") as log:
            self.late = subprocess.Popen(
                [*hub_command("chain", "node", "--genesis", "g/genesis.json", "--data", "late",
                              "--listen", f"127.0.0.1:{self.late_p2p}", "--peers", peers,
                              "--rpc", f"127.0.0.1:{self.late_rpc}")],
                cwd=self.root, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                env={**os.environ, "PYTHONUNBUFFERED": "1"})

    def stop(self) -> None:
        super().stop()
        if self.late is not None and self.late.poll() is None:
            self.late.kill()
            self.late.wait(10)


def test_a_call_made_before_the_hub_reaches_its_node_is_served(tmp_path):
    chain = LateNode(tmp_path / "devnet").start()
    owner = None
    try:
        owner = Owner(tmp_path / "owner", chain).start()  # its node does not answer yet
        owner.bind_on_chain()
        contract = create_contract(chain, TERMS, endpoint=owner.hub.url)
        called = call(chain, contract, 5 * RUFF)
        renter = Renter(tmp_path, owner)
        # The call is final before the hub can see the chain at all.
        wait_until("the call to be final", lambda: final(chain) >= chain.truth.included(called), 20, chain.log)
        assert renter.command("turn_on")[0] != 200

        chain.start_late()
        wait_until("the renter's grant", lambda: renter.command("turn_on")[0] == 200, 30, owner.hub.log, chain.log)
        assert owner.outlet() == "on"

        # The cheque follower (hub.market.closewatch) took its first cursor the same way: it knows
        # the call's channel and answers the renter's close with the latest cheque.
        channel = chain.truth.value("call", called)[3]
        first, answer = pay(owner, called, contract, channel, TERMS)
        assert answer[0] == 200 and answer[1]["ok"], answer
        time.sleep(0.5)  # more usage to pay for
        latest, answer = pay(owner, called, contract, channel, TERMS)
        assert answer[0] == 200 and answer[1]["ok"], answer
        assert latest.statement.amount > first.statement.amount
        assert fate_of(chain, RENTER, "settle", {"channel": channel, "cheque": first.to_body(), "close": True}) \
            == "included"
        wait_until("the hub's answer to the close",
                   lambda: chain.truth.value("chan", channel)[4] == latest.statement.amount, 15, owner.hub.log)
    finally:
        if owner is not None:
            owner.hub.stop()
        chain.stop()


def final(chain: Devnet) -> int:
    return ((chain.get("/head") or {}).get("lib") or {}).get("height", 0)


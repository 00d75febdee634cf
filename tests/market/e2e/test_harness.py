"""The harness itself: both chains come up with the plug bound to the owner on chain and the
owner, renter and stranger funded; the supply invariant holds from the start."""

from __future__ import annotations

import pytest

from tests.market.e2e.kit import FUNDS, OWNER, PLUG_KEY, RENTER, wait_until


@pytest.mark.parametrize("chain", ["embedded", "devnet"])
def test_owner_hub_follows_a_chain_with_the_plug_bound(chain, request):
    owner = request.getfixturevalue(chain)
    truth = owner.chain.truth
    assert truth.value("dev", PLUG_KEY.public_key)[0] == OWNER.public_key
    assert truth.balance(RENTER) == FUNDS
    assert truth.balance(OWNER) == FUNDS - truth.fees(OWNER)
    held, supply = truth.supply_holds()
    assert held == supply
    wait_until("the hub's chain head", lambda: owner.hub.get("/api/plugins/chain/head").get("height", 0) > 1, 10)

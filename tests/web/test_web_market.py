"""The market page in a real Chromium against a real ``hub run`` with its embedded chain, the way
tests/market/test_market_process.py rents the demo plug: an offer (create_contract) and a renter's
call made on the chain, returned after its one paid window; the page shows the contract, the
renter, what the plug earned with a chart and the contract's reviews; a hub without a market says so."""

from __future__ import annotations

import pytest

from hub.chain.node.files import read_key
from hub.chain.protocol.genesis import load_genesis
from tests.hubproc import DEMO, HubProcess
from tests.identity.kit import PLUG, PLUG_KEY
from tests.identity.test_chainctl_process import USER, Inbox, _bind_locally, _genesis
from tests.market.test_market_process import _final

PRICE, WINDOW = 100, 1_000


@pytest.fixture
def web_hub(request, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    if "no_market" in request.node.name:
        (data / "configuration.yaml").write_text(DEMO)
    else:
        chain_dir = data / "chain"
        _genesis(chain_dir, 200)
        owner_key = chain_dir / "keys" / "producer-0.key"
        (data / "configuration.yaml").write_text(
            f"hub: {{commit_interval: 0.1}}\nchain:\nidentity:\n  key: {owner_key}\nmarket:\n  poll: 0.1\n{DEMO}")
        net = load_genesis(chain_dir / "genesis.json").network
        request.node.binding = _bind_locally(data, net, read_key(owner_key))
    proc = HubProcess(data).start()
    yield proc
    proc.stop()


def test_an_offer_its_renter_the_earnings_chart_and_reviews_are_shown(request, signed_in, web_hub, shot):
    page = signed_in
    owner = read_key(web_hub.data / "chain" / "keys" / "producer-0.key")
    inbox = Inbox(web_hub.data / "chain")
    try:
        _final(web_hub, inbox.send(USER, "bind_device", {"statement": request.node.binding.to_body()}), "the binding")
        offer = inbox.send(owner, "create_contract", {
            "device": PLUG_KEY.public_key, "commands": ["outlet.turn_on", "outlet.turn_off"],
            "terms": {"kind": "prepaid", "price": PRICE, "window": WINDOW, "max_duration": WINDOW},
            "endpoint": web_hub.url})
        _final(web_hub, offer, "the offer")
        page.get_by_role("link", name="Market").click()
        offers = page.locator("#market-offers")
        offers.get_by_text(PLUG).wait_for()
        call = inbox.send(USER, "call", {"contract": offer, "deposit": 250})
        _final(web_hub, call, "the call")
        web_hub.wait_for(lambda: web_hub.get("/api/market/earnings"), 30, what="the return paid")
    finally:
        inbox.close()
    earnings = page.locator("#market-earnings")
    earnings.get_by_text("0.0001 RUFF").first.wait_for(timeout=15_000)  # 100 base units, one window
    page.locator("#earnings-chart canvas").wait_for()
    renters = page.locator("#market-renters")
    renters.get_by_text(USER.public_key.hex()[:10]).wait_for()
    offers.get_by_text("returned calls").wait_for()
    assert page.locator("#banner").is_hidden()
    shot(page, "market")


def test_a_hub_with_no_market_says_so_and_how_to_start_one(signed_in, shot):
    page = signed_in
    page.get_by_role("link", name="Market").click()
    note = page.locator("#no-market")
    note.get_by_text("needs a chain").wait_for()
    assert "hub market offer" in note.inner_text()
    shot(page, "no-market")

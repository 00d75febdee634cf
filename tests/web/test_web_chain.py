"""The chain page in a real Chromium against a real ``hub run``: with the embedded chain (a fast
devnet genesis, 200 ms blocks) the head moves on screen, the last irreversible block, this round's
producers and the hub's own account are shown; a hub without a chain says so and how to enable it."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.hubproc import DEMO, HubProcess
from tests.identity.test_chainctl_process import _genesis


@pytest.fixture
def web_hub(request, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    chain = "no_chain" not in request.node.name
    if chain:
        _genesis(data / "chain", 200)
    (data / "configuration.yaml").write_text(("chain:\n" if chain else "") + DEMO)
    proc = HubProcess(data).start()
    yield proc
    proc.stop()


def test_the_head_moves_and_the_producers_and_own_account_are_shown(signed_in, web_hub, shot):
    page = signed_in
    page.get_by_role("link", name="Chain").click()
    height = page.locator("#head-height")
    height.wait_for()
    first = int(height.inner_text())
    expect(height).not_to_have_text(str(first))  # the page's CSP forbids wait_for_function's eval
    assert int(height.inner_text()) > first
    own = web_hub.get("/api/plugins/chain/account")
    assert own["address"].startswith("ruff1")
    page.locator("#chain-account", has_text=own["address"]).wait_for()
    assert "RUFF" in page.locator("#own-balance").inner_text()
    producers = page.locator("#chain-producers table tbody tr")
    producers.first.wait_for()
    assert re.fullmatch(r"\d+", page.locator("#lib-height").inner_text())
    shot(page, "chain")


def test_a_hub_with_no_chain_says_so_and_how_to_enable_it(signed_in, web_hub, shot):
    page = signed_in
    page.get_by_role("link", name="Chain").click()
    note = page.locator("#no-chain")
    note.get_by_text("No chain is configured").wait_for()
    assert "chain:" in note.inner_text()
    assert page.locator("#banner").is_hidden()
    shot(page, "no-chain")

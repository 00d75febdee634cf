"""Fixtures of the dashboard's browser tests: a real ``hub run`` on the demo home, and a Chromium
page signed in to it (``signed_in``) or not (``page``). ``shot(name)`` keeps a screenshot."""

from __future__ import annotations

import pytest

from tests.hubproc import DEMO, HubProcess
from tests.web.browser import artefacts_dir, chromium_missing, launch


# Per module, not per session: Playwright's sync API keeps an asyncio loop running in the main
# thread while it is open, and every pytest-asyncio test collected after a web test (test_readme,
# drivers/, plugins/) then failed with "Runner.run() cannot be called from a running event loop".
@pytest.fixture(scope="module")
def browser():
    missing = chromium_missing()
    if missing:
        pytest.fail(missing)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = launch(playwright)
        yield browser
        browser.close()


@pytest.fixture
def web_hub(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "configuration.yaml").write_text(DEMO)
    proc = HubProcess(data).start()
    yield proc
    proc.stop()


@pytest.fixture
def page(browser, web_hub):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(10_000)
    page.goto(web_hub.url + "/")
    yield page
    context.close()


@pytest.fixture
def signed_in_as_owner(page, web_hub):
    """Signed in with the owner token, its offer of a browser token still on screen."""
    page.get_by_label("API token").fill(web_hub.token)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("navigation", name="Pages").wait_for()
    page.locator("#token-offer").wait_for()
    return page


@pytest.fixture
def signed_in(signed_in_as_owner):
    """Signed in with the owner token, having declined the offer of a browser token (as a user who
    keeps it would), so the page is as every other test expects it."""
    page = signed_in_as_owner
    page.get_by_role("button", name="Keep the owner token").click()
    page.locator("#token-offer").wait_for(state="detached")
    return page


@pytest.fixture
def shot(request, tmp_path_factory):
    folder = artefacts_dir(tmp_path_factory)

    def take(page, name: str) -> None:
        page.screenshot(path=str(folder / f"{request.node.name}-{name}.png"), full_page=True)

    return take

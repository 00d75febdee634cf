"""The plugins page and the tokens flow in a real Chromium against a real ``hub run``: the demo
running, a plugin that raises in its set-up shown as a problem with its error; the owner signing in
is offered a token of the browser's own, switches to it, and revokes tokens on the plugins page."""

from __future__ import annotations

import textwrap

import pytest

from tests.hubproc import DEMO, HubProcess


@pytest.fixture
def web_hub(tmp_path):
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    (plugins / "bad_setup.py").write_text(textwrap.dedent("""
        from hub import hookimpl
        @hookimpl
        def hub_setup(hub):
            raise RuntimeError("no such port /dev/ttyXYZ")
    """))
    # Runs until the test creates its trigger file, then crashes: a change the page must show live.
    (plugins / "crashy.py").write_text(textwrap.dedent(f"""
        import asyncio, pathlib
        from hub import hookimpl
        @hookimpl
        async def hub_run(hub):
            while not pathlib.Path({str(tmp_path / "crash-now")!r}).exists():
                await asyncio.sleep(0.1)
            raise RuntimeError("lost the bus")
    """))
    data = tmp_path / "data"
    data.mkdir()
    (data / "configuration.yaml").write_text(DEMO)
    proc = HubProcess(data, plugins_dir=plugins).start()
    yield proc
    proc.stop()


def test_the_demo_runs_and_a_broken_plugin_stands_out_with_its_error(signed_in, shot):
    page = signed_in
    page.get_by_role("link", name="Plugins").click()
    rows = page.locator("table tbody tr")
    demo = rows.filter(has=page.get_by_text("demo", exact=True))
    demo.get_by_text("running").wait_for()
    broken = rows.filter(has=page.get_by_text("bad_setup", exact=True))
    broken.get_by_text("/dev/ttyXYZ").wait_for()
    assert "problem" in broken.get_attribute("class")
    assert "problem" not in (demo.get_attribute("class") or "")
    assert "bad_setup" in page.locator("#plugins-summary").inner_text()
    shot(page, "plugins")


def test_the_owner_makes_a_token_for_the_browser_switches_to_it_and_can_revoke_others(signed_in_as_owner, web_hub, shot):
    page = signed_in_as_owner
    page.get_by_label("Name of this browser's token").fill("laptop")
    shot(page, "token-offer")
    page.get_by_role("button", name="Create a token for this browser").click()
    page.locator("#token-offer").wait_for(state="detached")
    stored = page.evaluate("localStorage.getItem('ruffhub.token')")
    assert stored and stored != web_hub.token
    assert web_hub.request("GET", "/api/states", token=stored)[0] == 200
    page.locator("#conn", has_text="Live").wait_for()
    # The browser's token is not the owner's: the tokens section says who manages tokens.
    page.get_by_role("link", name="Plugins").click()
    page.locator("#tokens-section", has_text="Only the owner token").wait_for()
    # Signed in again with the owner token (kept, this time), the owner revokes "laptop".
    page.get_by_role("button", name="Sign out").click()
    page.get_by_label("API token").fill(web_hub.token)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("button", name="Keep the owner token").click()
    page.get_by_role("link", name="Plugins").click()
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Revoke token laptop").click()
    page.get_by_role("button", name="Revoke token laptop").wait_for(state="detached")
    shot(page, "tokens")
    assert web_hub.request("GET", "/api/states", token=stored)[0] == 401
    assert page.evaluate("localStorage.getItem('ruffhub.token')") == web_hub.token


def test_the_plugins_page_is_readable_on_a_phone(browser, web_hub, shot):
    context = browser.new_context(viewport={"width": 390, "height": 844})
    try:
        page = context.new_page()
        page.goto(web_hub.url + "/#/plugins")
        page.get_by_label("API token").fill(web_hub.token)
        page.get_by_role("button", name="Sign in").click()
        page.get_by_role("button", name="Keep the owner token").click()
        page.get_by_text("/dev/ttyXYZ").wait_for()
        # Wide tables scroll inside their card; the page itself does not scroll sideways.
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
        shot(page, "plugins-phone")
    finally:
        context.close()


def test_a_plugin_crashing_shows_on_the_open_page_without_reloading(signed_in, web_hub, shot):
    page = signed_in
    page.get_by_role("link", name="Plugins").click()
    crashy = page.locator("table tbody tr").filter(has=page.get_by_text("crashy", exact=True))
    crashy.get_by_text("running").wait_for()
    page.evaluate("window.notReloaded = true")
    (web_hub.data.parent / "crash-now").touch()
    crashy.get_by_text("lost the bus").wait_for()  # from the plugin_status event, not a reload
    assert page.evaluate("window.notReloaded") is True
    assert "problem" in crashy.get_attribute("class")
    shot(page, "plugin-crashed")

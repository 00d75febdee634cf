"""The dashboard's shell in a real Chromium against a real ``hub run``: served at ``/`` with no
token, signing in with one, a wrong one refused in words, signing out."""

from __future__ import annotations

import urllib.request


def test_the_page_is_served_at_root_with_its_headers(web_hub):
    with urllib.request.urlopen(web_hub.url + "/") as response:
        assert response.status == 200
        assert "script-src 'self'" in response.headers["Content-Security-Policy"]
        assert b'<script type="module" src="/static/app.js">' in response.read()


def test_a_wrong_token_is_refused_in_words(page, shot):
    page.get_by_label("API token").fill("not-a-token")
    page.get_by_role("button", name="Sign in").click()
    error = page.locator("#signin-error")
    error.filter(has_text="refused").wait_for()
    assert page.get_by_role("navigation", name="Pages").is_hidden()
    shot(page, "signin-refused")


def test_sign_in_goes_live_and_sign_out_forgets_the_token(signed_in, shot):
    page = signed_in
    page.locator("#conn", has_text="Live").wait_for()
    shot(page, "overview")
    page.get_by_role("button", name="Sign out").click()
    page.get_by_label("API token").wait_for()
    assert page.evaluate("localStorage.getItem('ruffhub.token')") is None

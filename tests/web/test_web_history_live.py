"""The history page beyond one answer: a range that ends now goes on growing with the states the
WebSocket brings, and a range longer than one answer of ``GET /api/history`` is read page by page."""

from __future__ import annotations

import re

from tests.web.test_web_history import _recorded


def test_the_last_hours_go_on_growing_with_live_states(signed_in, web_hub):
    page = signed_in
    web_hub.wait_for(lambda: _recorded(web_hub, "sensor.room_temperature"), timeout=20, what="five recorded temperatures")
    page.goto(web_hub.url + "/#/history?entity=sensor.room_temperature&hours=1")
    summary = page.locator(".history-chart .chart-summary li")
    summary.wait_for()
    first = int(re.search(r"(\d+) readings", summary.inner_text()).group(1))
    page.wait_for_function(
        "([n]) => { const m = /(\\d+) readings/.exec(document.querySelector('.chart-summary li').textContent);"
        " return m && Number(m[1]) > n; }", arg=[first], timeout=20_000)


def test_a_range_longer_than_one_answer_is_read_page_by_page(signed_in, web_hub):
    """GET /api/history keeps the oldest rows up to its limit: the page reads on from the last row,
    without repeating the rows at the boundary, so the newest readings are not silently cut off."""
    page = signed_in
    web_hub.wait_for(lambda: _recorded(web_hub, "sensor.room_temperature"), timeout=20, what="five recorded temperatures")
    end = web_hub.get("/api/history/sensor.room_temperature?start=0")["states"][-1]["last_updated"]
    whole = web_hub.get(f"/api/history/sensor.room_temperature?start=0&end={end.replace('+', '%2B')}")["states"]
    read = page.evaluate("""async (end) => {
        const { readHistory } = await import("/static/pages/history.js");
        const { get } = await import("/static/api.js");
        return (await readHistory({ get }, "sensor.room_temperature", "1970-01-01T00:00:00Z", end, 2)).states;
    }""", end)
    assert read == whole

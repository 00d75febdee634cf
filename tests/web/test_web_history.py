"""The history page in a real Chromium against a real ``hub run`` on the fast demo: a chart of the
demo's room temperature drawn from the recorded states, its text alternative, zoom, and a range with
no data said in words."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone


def _recorded(web_hub, entity_id: str) -> bool:
    return len(web_hub.get(f"/api/history/{entity_id}?start=0")["states"]) >= 5


def test_a_chart_of_the_temperature_draws_with_data_and_zooms(signed_in, web_hub, shot):
    page = signed_in
    web_hub.wait_for(lambda: _recorded(web_hub, "sensor.room_temperature"), timeout=20, what="five recorded temperatures")
    # A fixed range (from-to), so no live state moves the range shown while the test zooms.
    end = (datetime.now(timezone.utc) + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    page.goto(web_hub.url + f"/#/history?entity=sensor.room_temperature&start=2000-01-01T00:00:00Z&end={end}")
    chart = page.locator(".history-chart")
    canvas = chart.locator("canvas")
    canvas.wait_for()
    box = canvas.bounding_box()
    assert box["width"] > 200 and box["height"] > 100
    summary = chart.locator(".chart-summary li")
    assert "readings" in summary.inner_text() and "°C" in summary.inner_text()
    chart.get_by_text("Readings as a table").click()
    assert chart.locator("table tr").count() >= 6  # a header and at least five readings
    shot(page, "history")

    shown = chart.locator(".chart-range")
    before = shown.inner_text()
    over = chart.locator(".u-over")
    area = over.bounding_box()
    y = area["y"] + area["height"] / 2
    page.mouse.move(area["x"] + area["width"] - 2, y)  # hovering shows the value with its unit
    chart.locator(".u-legend", has_text="°C").wait_for()
    page.mouse.move(area["x"] + area["width"] * 0.3, y)
    page.mouse.down()
    page.mouse.move(area["x"] + area["width"] * 0.6, y, steps=5)
    page.mouse.up()
    page.wait_for_function("([el, text]) => el.textContent !== text", arg=[shown.element_handle(), before])
    assert shown.inner_text() != before
    over.dblclick()
    page.wait_for_function("([el, text]) => el.textContent === text", arg=[shown.element_handle(), before])


def test_the_form_chooses_entities_and_no_data_is_said_in_words(signed_in, web_hub):
    page = signed_in
    page.goto(web_hub.url + "/#/history")
    page.get_by_label("Entities").select_option(["sensor.room_temperature"])
    page.get_by_label("Range").select_option("custom")
    page.get_by_label("From", exact=True).fill("2001-01-01T00:00")
    page.get_by_label("To", exact=True).fill("2001-01-02T00:00")
    page.get_by_role("button", name="Show").click()
    page.locator(".history-empty", has_text="no recorded states in this range").wait_for()
    assert "start=2001-01-01" in page.evaluate("location.hash")


def test_a_bad_range_in_the_address_is_refused_in_words(signed_in, web_hub):
    page = signed_in
    page.goto(web_hub.url + "/#/history?entity=sensor.room_temperature&hours=soon")
    page.locator("#banner", has_text='hours: expected a number of hours').wait_for()


def test_on_off_entities_get_a_step_chart_of_their_own_on_a_dark_phone(browser, web_hub, shot):
    context = browser.new_context(viewport={"width": 390, "height": 844}, color_scheme="dark")
    page = context.new_page()
    try:
        page.goto(web_hub.url + "/")
        page.get_by_label("API token").fill(web_hub.token)
        page.get_by_role("button", name="Sign in").click()
        web_hub.wait_for(lambda: _recorded(web_hub, "sensor.room_temperature"), timeout=20, what="five recorded temperatures")
        page.goto(web_hub.url + "/#/history?entity=sensor.room_temperature&entity=switch.smart_plug&hours=24")
        charts = page.locator(".history-chart")
        charts.nth(1).locator("canvas").wait_for()
        assert charts.count() == 2
        assert "Smart plug" in charts.nth(1).locator("figcaption").inner_text()
        assert re.search(r"last (on|off) at", charts.nth(1).locator(".chart-summary").inner_text())
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")  # nothing wider than the phone
        shot(page, "history-phone")
    finally:
        context.close()

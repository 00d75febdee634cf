"""The overview and device pages in a real Chromium against a real ``hub run`` (the fast demo, with
a lock code, and the dashboard benchmarks' driver for an entity that is unavailable): states change
live, a command's result is shown once the hub confirms it, a refusal is said in words."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.hubproc import DEMO, HubProcess

PLUGINS = Path(__file__).resolve().parents[2] / "benchmarks" / "web_plugins"
CONFIG = DEMO + "  lock_code: '1234'\nbench_web_driver:\n  entities: 4\n"


@pytest.fixture
def web_hub(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "configuration.yaml").write_text(CONFIG)
    proc = HubProcess(data, plugins_dir=PLUGINS).start()
    yield proc
    proc.stop()


def entity(page, entity_id):
    return page.locator(f'li.entity[data-entity-id="{entity_id}"]')


def value_of(page, entity_id) -> str:
    return entity(page, entity_id).locator(".value").inner_text()


def test_states_change_live_and_the_light_is_switched(signed_in, web_hub, shot):
    page = signed_in
    page.get_by_role("heading", name="Overview").wait_for()
    room = entity(page, "sensor.room_temperature").locator(".value")
    room.filter(has_text="°C").wait_for()
    first = room.inner_text()
    page.wait_for_function(
        "([sel, first]) => document.querySelector(sel).textContent !== first",
        arg=['li.entity[data-entity-id="sensor.room_temperature"] .value', first])
    light = entity(page, "light.living_room")
    assert light.locator(".value").inner_text() == "off"
    light.get_by_role("button", name="Turn Living room light on").click()
    light.locator(".value", has_text="on").wait_for()
    assert web_hub.get("/api/states/light.living_room")["state"] == "on"
    light.get_by_role("slider", name="Brightness").fill("128")
    light.get_by_role("button", name="Set brightness of Living room light").click()
    light.locator(".detail", has_text="brightness 128").wait_for()
    shot(page, "overview")


def test_thermostat_set_point_and_mode(signed_in, web_hub):
    page = signed_in
    climate = entity(page, "climate.thermostat")
    climate.locator(".detail", has_text="target").wait_for()
    climate.get_by_label("Set-point", exact=True).fill("23.5")
    climate.get_by_label("Set-point", exact=True).press("Enter")
    climate.locator(".detail", has_text="target 23.5").wait_for()
    climate.get_by_label("Mode", exact=True).select_option("off")
    climate.get_by_role("button", name="Set mode of Thermostat").click()
    climate.locator(".value", has_text="off").wait_for()
    state = web_hub.get("/api/states/climate.thermostat")
    assert state["state"] == "off" and state["attributes"]["target_temperature"] == 23.5


def test_lock_with_its_code_and_a_wrong_code_refused_in_words(signed_in, web_hub):
    page = signed_in
    lock = entity(page, "lock.front_door")
    lock.locator(".value", has_text="locked").wait_for()
    lock.get_by_label("Code", exact=True).fill("9999")
    lock.get_by_role("button", name="Unlock Front door").click()
    lock.get_by_role("alert").filter(has_text="wrong or missing code").wait_for()
    assert lock.get_by_label("Code", exact=True).input_value() == ""  # the code is not kept
    assert web_hub.get("/api/states/lock.front_door")["state"] == "locked"
    lock.get_by_label("Code", exact=True).fill("1234")
    lock.get_by_role("button", name="Unlock Front door").click()
    lock.locator(".value", has_text="unlocked").wait_for()
    assert lock.locator(".error").text_content() == ""  # the refusal is gone once a call succeeds


def test_unavailable_is_shown_with_its_controls_disabled(signed_in):
    page = signed_in
    plug = entity(page, "switch.web_offline_plug")
    plug.locator(".value", has_text="unavailable").wait_for()
    assert plug.get_by_role("button", name="Toggle Offline plug").is_disabled()
    assert entity(page, "switch.smart_plug").get_by_role("button", name="Toggle Smart plug").is_enabled()


def test_device_page_shows_entities_identity_and_command_log(signed_in, web_hub, shot):
    page = signed_in
    entity(page, "switch.smart_plug").locator(".value").filter(has_text="o").wait_for()
    web_hub.post("/api/entities/switch.smart_plug/commands/toggle", {})
    page.get_by_role("link", name="Smart plug").click()
    page.get_by_role("heading", name="Smart plug", level=1).wait_for()
    assert page.locator("dd", has_text="demo").count() >= 1  # the driver
    entity(page, "sensor.smart_plug_power").locator(".value").filter(has_text="W").wait_for()
    page.get_by_role("heading", name="Command log").wait_for()
    page.locator("td", has_text="toggle").first.wait_for()
    assert "QR code is not shown" in page.get_by_role("heading", name="Identity and binding").locator("..").inner_text()
    shot(page, "device")


def test_overview_on_a_phone(browser, web_hub, shot):
    context = browser.new_context(viewport={"width": 390, "height": 844}, device_scale_factor=2, is_mobile=True)
    page = context.new_page()
    page.set_default_timeout(10_000)
    page.goto(web_hub.url + "/")
    page.get_by_label("API token").fill(web_hub.token)
    page.get_by_role("button", name="Sign in").click()
    entity(page, "light.living_room").locator(".value").filter(has_text="o").wait_for()
    assert page.evaluate("document.documentElement.scrollWidth") <= 390  # nothing wider than the phone
    shot(page, "overview-phone")
    context.close()


def test_number_and_select_of_the_water_heater(signed_in, web_hub):
    page = signed_in
    number = entity(page, "number.water_heater_set_point")
    number.locator(".value", has_text="°C").wait_for()
    number.get_by_label("Value", exact=True).fill("60")
    number.get_by_role("button", name="Set value of Water heater set-point").click()
    number.locator(".value", has_text="60").wait_for()
    number.get_by_label("Value", exact=True).fill("61.2")  # off the 0.5 step: the hub says why
    number.get_by_role("button", name="Set value of Water heater set-point").click()
    number.get_by_role("alert").filter(has_text="refused").wait_for()
    mode = entity(page, "select.water_heater_mode")
    mode.get_by_label("Option", exact=True).select_option("eco")
    mode.get_by_role("button", name="Set option of Water heater mode").click()
    mode.locator(".value", has_text="eco").wait_for()
    assert web_hub.get("/api/states/select.water_heater_mode")["state"] == "eco"


def test_an_unknown_device_is_said_in_words(signed_in, web_hub):
    page = signed_in
    page.goto(web_hub.url + "/#/device/demo%3Anothing")
    page.get_by_role("alert").filter(has_text="unknown device").wait_for()
    page.get_by_text("No device demo:nothing.").wait_for()


def test_cover_position_and_button_press(signed_in, web_hub):
    page = signed_in
    gate = entity(page, "cover.web_gate")
    gate.locator(".value", has_text="closed").wait_for()
    gate.get_by_label("Position", exact=True).fill("40")
    gate.get_by_role("button", name="Set position of Gate").click()
    gate.locator(".detail", has_text="position 40").wait_for()
    gate.get_by_role("button", name="Stop Gate").click()
    gate.locator(".value", has_text="stopped").wait_for()
    bell = entity(page, "button.web_bell")
    bell.locator(".value", has_text="never pressed").wait_for()
    bell.get_by_role("button", name="Press Bell").press("Enter")  # the keyboard works as well as a click
    bell.locator(".value", has_text="pressed").filter(has_not_text="never").wait_for()
    assert isinstance(web_hub.get("/api/states/button.web_bell")["value"], float)

"""The rules pages in a real Chromium against a real ``hub run``: the demo's example rules (from
their file: read-only, with file and line), disable and enable, a run shown step by step, and the
editor of a rule made through the API, which puts each problem at its line."""

from __future__ import annotations

from importlib import resources

import pytest

from tests.hubproc import DEMO, HubProcess


@pytest.fixture
def web_hub(tmp_path):
    """The fast demo with the packaged example rules in automations.yaml, as a user who copied them
    there (the embedded default runs them only while there is no configuration.yaml)."""
    data = tmp_path / "data"
    data.mkdir()
    (data / "configuration.yaml").write_text(DEMO)
    (data / "automations.yaml").write_text(resources.files("hub.rules").joinpath("examples.yaml").read_text())
    proc = HubProcess(data).start()
    yield proc
    proc.stop()


def test_the_list_shows_the_example_rules_and_disable_enable_round_trips(signed_in, web_hub, shot):
    page = signed_in
    page.goto(web_hub.url + "/#/rules")
    row = page.locator("tr[data-rule=ac_off_when_cold]")
    row.get_by_text("Air conditioner off below 15 °C").wait_for()
    assert "automations.yaml, line 4" in row.inner_text()  # the file name; the whole path in its title
    assert page.locator("tr[data-rule=plug_power_alert]").count() == 1
    broken = page.locator("tr[data-rule=hallway_light_on_motion]")
    assert "has errors" in broken.inner_text() and "latitude" in broken.inner_text()
    shot(page, "rules")

    row.get_by_role("button", name="Disable Air conditioner off below 15 °C").click()
    row.locator(".rule-status", has_text="disabled").wait_for()
    assert web_hub.get("/api/rules/ac_off_when_cold")["enabled"] is False
    row.get_by_role("button", name="Enable Air conditioner off below 15 °C").click()
    row.locator(".rule-status", has_text="enabled").wait_for()
    assert web_hub.get("/api/rules/ac_off_when_cold")["enabled"] is True


def test_a_run_is_shown_step_by_step_and_a_file_rule_is_read_only(signed_in, web_hub, shot):
    page = signed_in
    page.goto(web_hub.url + "/#/rules/ac_off_when_cold")
    page.get_by_role("heading", name="Air conditioner off below 15 °C").wait_for()
    assert page.get_by_text("No runs since the hub started.").is_visible()
    assert "Read-only: defined in" in page.locator(".rule-definition").inner_text()
    assert page.locator("#rule-editor").count() == 0

    page.get_by_role("button", name="Run Air conditioner off below 15 °C now").click()
    trace = page.locator(".trace").first
    trace.locator(".trace-end", has_text="finished").wait_for()
    steps = trace.locator(".trace-steps > li").all_inner_texts()
    assert steps[0] == "Trigger: run by hand through the API"
    assert steps[1].startswith("Action action/0 (call): done in ")
    assert steps[2].startswith("Action action/1 (log): done in ")
    assert steps[-1].startswith("Ended: finished")
    shot(page, "rule-trace")


def test_the_editor_puts_an_error_at_its_line_then_saves_the_fix(signed_in, web_hub, shot):
    page = signed_in
    page.goto(web_hub.url + "/#/rules/new")
    page.get_by_role("button", name="Create").click()
    page.get_by_role("heading", name="Hallway motion turns the living-room light on").wait_for()
    assert web_hub.get("/api/rules/my_rule")["managed_by"] == "api"

    editor = page.get_by_label("Rule definition (JSON)")
    text = editor.input_value()
    broken = text.replace('"light.turn_on"', '"light.turn_onn"')
    line = broken.split("\n").index(next(l for l in broken.split("\n") if "turn_onn" in l)) + 1
    editor.fill(broken)
    page.get_by_role("button", name="Check").click()
    bad = page.locator(".editor-line.bad")
    bad.wait_for()
    assert bad.all_inner_texts() == [str(line)]
    assert "no command 'turn_onn'" in page.locator(".editor-row.bad").inner_text()
    assert page.locator("#rule-problems").inner_text().startswith(f"Line {line}: action[0].call:")
    shot(page, "rule-editor-error")

    page.get_by_role("button", name="Save").click()  # refused: the check runs first
    assert web_hub.get("/api/rules/my_rule")["definition"]["action"][0]["call"] == "light.turn_on"

    editor.fill(broken.replace('"light.turn_onn"', '"light.turn_off"'))
    page.get_by_role("button", name="Save").click()
    page.locator(".editor-status", has_text="Saved").wait_for()
    assert page.locator(".editor-line.bad").count() == 0
    assert web_hub.get("/api/rules/my_rule")["definition"]["action"][0]["call"] == "light.turn_off"


def test_broken_json_is_shown_at_its_line(signed_in, web_hub):
    page = signed_in
    page.goto(web_hub.url + "/#/rules/new")
    editor = page.get_by_label("Rule definition (JSON)")
    editor.fill('{\n  "id": "x",\n  "trigger": [\n}\n')
    page.get_by_role("button", name="Check").click()
    page.locator("#rule-problems", has_text="not valid JSON").wait_for()
    assert page.locator(".editor-line.bad").inner_text() == "4"


def test_a_rule_that_could_not_be_loaded_says_where_to_fix_it(signed_in, web_hub):
    page = signed_in
    page.goto(web_hub.url + "/#/rules/hallway_light_on_motion")
    page.locator(".rule-definition", has_text="could not be loaded").wait_for()
    assert "at line 21" in page.locator(".rule-definition").inner_text()
    assert "latitude" in page.locator(".rule-info").inner_text()
    assert page.get_by_role("button", name="Run hallway_light_on_motion now").is_disabled()

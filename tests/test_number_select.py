"""The number and select capabilities: per-entity validation in the model, and what a user of the API
meets in a real ``hub run`` (the demo's water heater)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from hub.devices.capabilities import CAPABILITIES
from hub.devices.model import EntitySpec
from tests.hubproc import HubProcess

SET_VALUE = CAPABILITIES["number"].commands["set_value"]
SELECT = CAPABILITIES["select"].commands


def number(**options) -> EntitySpec:
    return EntitySpec(key="sp", capability="number", device_class="temperature", options=options)


def test_a_number_takes_home_assistants_defaults_and_its_class_unit():
    spec = number()
    assert spec.options == {"min": 0, "max": 100, "step": 1, "mode": "auto"}
    assert spec.unit == "°C"


@pytest.mark.parametrize("options, message", [
    ({"min": 30, "max": 5}, "min (30) must be below max (5)"),
    ({"step": 0}, "options.step: Input should be greater than 0"),
    ({"maximum": 3}, "options.maximum: Extra inputs are not permitted"),
    ({"mode": "dial"}, "options.mode: Input should be 'auto', 'box' or 'slider'"),
])
def test_a_bad_number_range_is_refused_when_the_driver_declares_it(options, message):
    with pytest.raises(ValidationError, match="number 'sp'") as refused:
        number(**options)
    assert message in str(refused.value)


@pytest.mark.parametrize("options, message", [
    ({}, "options.options: Field required"),
    ({"options": []}, "at least 1 item"),
    ({"options": ["eco", "eco"]}, "repeated: eco"),
])
def test_a_select_needs_distinct_options(options, message):
    with pytest.raises(ValidationError, match=message):
        EntitySpec(key="mode", capability="select", options=options)


@pytest.mark.parametrize("value, error", [
    (22.5, None), (5, None), (30, None), (5.3, None),
    (30.5, "Input should be less than or equal to 30"),
    (4.9, "Input should be greater than or equal to 5"),
    (22.35, "Input should be 5 plus a multiple of 0.1"),
    (True, "not true or false"),
    ("warm", "valid number"),
    (float("nan"), "finite number"),
])
def test_set_value_is_checked_against_the_entitys_range_and_step(value, error):
    model = SET_VALUE.args_for(number(min=5, max=30, step=0.1).options)
    if error is None:
        assert model.model_validate({"value": value}).value == value
    else:
        with pytest.raises(ValidationError, match=error):
            model.model_validate({"value": value})


def test_select_commands_derive_the_option_like_home_assistant():
    options = {"options": ["eco", "comfort", "boost"]}
    first, last, nxt, prev = (SELECT[n] for n in ("select_first", "select_last", "select_next", "select_previous"))
    assert all(c.via == "select_option" for c in (first, last, nxt, prev))
    cycle, stop = nxt.args(cycle=True), nxt.args(cycle=False)
    assert first.derive(options, "boost", first.args()).option == "eco"
    assert last.derive(options, "eco", last.args()).option == "boost"
    assert nxt.derive(options, "boost", cycle).option == "eco"
    assert nxt.derive(options, "boost", stop).option == "boost"
    assert prev.derive(options, "eco", cycle).option == "boost"
    assert prev.derive(options, "eco", stop).option == "eco"
    assert nxt.derive(options, None, cycle).option == "comfort"  # no state yet: from the first


def test_state_shape_is_checked_at_the_driver():
    CAPABILITIES["number"].check_value(21.5)
    with pytest.raises(ValueError, match="number state must be a number"):
        CAPABILITIES["number"].check_value("21.5")
    CAPABILITIES["select"].check_value("eco", {"options": ["eco", "boost"]})
    with pytest.raises(ValueError, match="one of its options eco, boost; got 'turbo'"):
        CAPABILITIES["select"].check_value("turbo", {"options": ["eco", "boost"]})


@pytest.fixture
def hub(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "configuration.yaml").write_text("demo:\n  update_interval: 0.05\n  seed: 1\n")
    proc = HubProcess(data).start()
    yield proc
    proc.stop()


def test_the_api_lists_number_and_select_and_names_a_bad_value(hub):
    caps = hub.get("/api/capabilities")
    args = caps["number"]["commands"]["set_value"]["args"]
    assert args["properties"]["value"]["type"] == "number" and args["required"] == ["value"]
    assert set(caps["number"]["options"]["properties"]) == {"min", "max", "step", "mode"}
    assert set(caps["select"]["commands"]) == {"select_option", "select_first", "select_last", "select_next",
                                               "select_previous"}
    assert caps["select"]["options"]["required"] == ["options"]

    entity = hub.get("/api/entities/number.water_heater_set_point")
    assert entity["options"] == {"min": 40.0, "max": 65.0, "step": 0.5, "mode": "slider"}
    answer = hub.post("/api/entities/number.water_heater_set_point/commands/set_value", {"value": 62})
    assert answer["state"]["state"] == 62

    status, body = hub.request("POST", "/api/entities/number.water_heater_set_point/commands/set_value", {"value": 70})
    assert status == 422, body
    assert body["errors"] == [{"field": "value", "message": "Input should be less than or equal to 65"}]
    assert "value: Input should be less than or equal to 65" in body["message"]
    status, body = hub.request("POST", "/api/entities/number.water_heater_set_point/commands/set_value", {})
    assert status == 422 and body["errors"] == [{"field": "value", "message": "Field required"}]

    status, body = hub.request("POST", "/api/entities/select.water_heater_mode/commands/select_option",
                               {"option": "turbo"})
    assert status == 422 and body["errors"][0]["field"] == "option" and "'eco', 'comfort'" in body["message"]
    answer = hub.post("/api/entities/select.water_heater_mode/commands/select_next", {})
    assert answer["state"]["state"] == "boost"  # comfort -> boost
    assert hub.get("/api/states/number.water_heater_set_point")["state"] == 62  # untouched by the refusals

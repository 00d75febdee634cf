"""``hub call`` against a real hub: key=value arguments are read by the command's schema."""

from __future__ import annotations

import pytest

from hub.cliargs import ArgumentError, convert_args
from tests.hubproc import HubProcess, run_cli

CONFIG = "demo:\n  seed: 1\n  motion_per_hour: 0\n  lock_code: '0123'\n"


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    data = tmp_path_factory.mktemp("call") / "data"
    data.mkdir()
    (data / "configuration.yaml").write_text(CONFIG)
    process = HubProcess(data).start()
    yield process
    process.stop()


def test_a_lock_code_of_digits_is_sent_as_text(hub):
    out = run_cli(hub.data, "call", "lock.front_door", "unlock", "code=0123")
    assert out.returncode == 0, out.stderr
    assert hub.get("/api/states/lock.front_door")["state"] == "unlocked"
    out = run_cli(hub.data, "call", "lock.front_door", "lock")
    assert out.returncode == 0, out.stderr
    out = run_cli(hub.data, "call", "lock.front_door", "unlock", "code=4321")
    assert out.returncode == 1 and "wrong or missing code" in out.stderr
    assert "valid string" not in out.stderr


def test_numbers_booleans_and_lists_follow_the_schema(hub):
    out = run_cli(hub.data, "call", "light.living_room", "turn_on", "brightness=128", "rgb_color=[255, 0, 10]")
    assert out.returncode == 0, out.stderr
    attributes = hub.get("/api/states/light.living_room")["attributes"]
    assert attributes["brightness"] == 128 and attributes["rgb_color"] == [255, 0, 10]
    out = run_cli(hub.data, "call", "climate.thermostat", "set_temperature", "temperature=21.5")
    assert out.returncode == 0, out.stderr


@pytest.mark.parametrize("args, words", [
    (("light.living_room", "turn_on", "brightness=bright"), "brightness: 'bright' is not an integer"),
    (("light.living_room", "turn_on", "rgb_color=red"), "rgb_color: 'red' is not a JSON list"),
    (("light.living_room", "turn_on", "brigthness=3"), "light.turn_on has no argument 'brigthness'; it takes brightness"),
    (("light.living_room", "turn_on", "brightness"), "argument 'brightness' is not key=value"),
    (("light.living_room", "fly", "height=3"), "light, which has no command 'fly'; valid:"),
    (("light.nowhere", "turn_on", "brightness=3"), "unknown entity 'light.nowhere'"),
    (("climate.thermostat", "set_temperature", "temperature=nan"), "temperature: 'nan' is not a number"),
])
def test_a_value_that_does_not_fit_names_its_key(hub, args, words):
    out = run_cli(hub.data, "call", *args)
    assert out.returncode == 1 and words in out.stderr, out.stderr


def test_conversion_by_schema_types():
    schema = {
        "properties": {
            "s": {"anyOf": [{"type": "string", "maxLength": 32}, {"type": "null"}]},
            "b": {"type": "boolean"},
            "n": {"type": "number"},
            "mode": {"$ref": "#/$defs/Mode"},
            "obj": {"type": "object"},
        },
        "$defs": {"Mode": {"enum": ["heat", "cool"], "type": "string"}},
    }
    got = convert_args(["s=007", "b=off", "n=1e3", "mode=heat", "obj={\"a\": [1]}"], schema, "x.y")
    assert got == {"s": "007", "b": False, "n": 1000.0, "mode": "heat", "obj": {"a": [1]}}
    assert convert_args(["s=null"], schema, "x.y") == {"s": None}
    with pytest.raises(ArgumentError, match="b: 'maybe' is not true or false"):
        convert_args(["b=maybe"], schema, "x.y")

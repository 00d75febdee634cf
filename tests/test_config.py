"""What a user sees when loading configuration.yaml: values, and issues naming file, line and key."""

from __future__ import annotations

import copy

import textwrap
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from hub.config import (
    EMBEDDED_DEFAULT,
    ConfigError,
    ConfigIssue,
    CoreConfig,
    check_config,
    cross_checked,
    duplicates,
    format_issues,
    load_config,
    valid_fields,
)


class Connection(BaseModel):
    model_config = ConfigDict(extra="forbid")

    host: str
    port: int = Field(502, ge=1, le=65535)
    password: str | None = None


class ModbusConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    connections: list[Connection] = []


class DemoConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    count: int = 3


class EchoingConfig(BaseModel):
    """A plugin whose own validator quotes its input, as custom validators often do."""

    token: str

    @field_validator("token")
    @classmethod
    def _long_enough(cls, value: str) -> str:
        if len(value) < 20:
            raise ValueError(f"token {value!r} is too short")
        return value


SCHEMAS = {"demo": DemoConfig, "modbus": ModbusConfig, "echo": EchoingConfig, "raw": None}


def write(directory: Path, text: str, name: str = "configuration.yaml") -> Path:
    path = directory / name
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


def only_issue(result) -> ConfigIssue:
    assert len(result.issues) == 1, format_issues(result.issues)
    return result.issues[0]


def test_no_file_uses_embedded_default(tmp_path):
    before = copy.deepcopy(EMBEDDED_DEFAULT)
    schemas = {name: SCHEMAS.get(name) for name in EMBEDDED_DEFAULT if name != "hub"} | SCHEMAS
    for path in (None, tmp_path / "missing.yaml"):
        result = load_config(path, schemas)
        assert result.ok, result.issues
        assert result.path is None
        assert result.core.latitude is not None  # the demo's sunset rule needs a place
        assert result.sections["demo"] == {}
        assert result.plugin_configs["demo"] == DemoConfig()
    assert EMBEDDED_DEFAULT == before  # the default itself is not mutated by loading


def test_valid_file(tmp_path):
    path = write(
        tmp_path,
        """
        hub:
          name: Garage
          port: 8200
          log_level: debug
          latitude: 52.5
        demo:
          count: 5
        modbus:
          connections:
            - host: 10.0.0.5
            - host: 10.0.0.6
              port: 503
        raw:
          anything: [1, 2]
        """,
    )
    result = load_config(path, SCHEMAS)
    assert result.ok, format_issues(result.issues)
    assert result.path == path
    assert result.core.name == "Garage"
    assert result.core.port == 8200
    assert result.core.log_level == "debug"
    assert result.core.latitude == 52.5
    assert result.core.history_days == 10
    assert result.plugin_configs["demo"] == DemoConfig(count=5)
    assert [c.port for c in result.plugin_configs["modbus"].connections] == [502, 503]
    assert result.plugin_configs["raw"] == {"anything": [1, 2]}
    assert result.sections["demo"] == {"count": 5}
    # A plugin with a schema but no section is not set up.
    assert "echo" not in result.plugin_configs
    assert check_config(path, SCHEMAS) == []


def test_empty_section_means_empty_mapping(tmp_path):
    path = write(tmp_path, "demo:\nraw:\n")
    result = load_config(path, SCHEMAS)
    assert result.ok, format_issues(result.issues)
    assert result.sections == {"demo": {}, "raw": {}}
    assert result.plugin_configs == {"demo": DemoConfig(), "raw": {}}


def test_empty_file_is_valid_with_defaults(tmp_path):
    result = load_config(write(tmp_path, "# nothing yet\n"), SCHEMAS)
    assert result.ok
    assert result.path is not None
    assert result.core == CoreConfig()
    assert result.plugin_configs == {}


def test_wrong_type_names_line_and_key(tmp_path):
    path = write(
        tmp_path,
        """
        hub:
          name: Garage
          port: eighty
        """,
    )
    result = load_config(path, SCHEMAS)
    issue = only_issue(result)
    assert (issue.file, issue.line, issue.column, issue.key) == (str(path), 3, 3, "hub.port")
    assert "valid integer" in issue.message
    assert str(issue) == f"{path}:3:3: hub.port: {issue.message}"
    # The hub still gets a usable core configuration.
    assert result.core == CoreConfig()


def test_unknown_key_in_hub(tmp_path):
    path = write(
        tmp_path,
        """
        hub:
          name: Garage
          prot: 8200
        """,
    )
    issue = only_issue(load_config(path, SCHEMAS))
    assert (issue.line, issue.key) == (3, "hub.prot")
    assert "not permitted" in issue.message


def test_unknown_section_suggests_a_name(tmp_path):
    path = write(
        tmp_path,
        """
        hub:
          name: Garage
        modbsu:
          connections: []
        """,
    )
    result = load_config(path, {"demo": DemoConfig, "modbus": ModbusConfig})
    issue = only_issue(result)
    assert (issue.line, issue.column, issue.key) == (3, 1, "modbsu")
    assert issue.message == (
        "unknown section 'modbsu': no installed plugin has that name (did you mean 'modbus'?); "
        "installed: demo, modbus"
    )
    assert result.sections == {}


def test_errors_in_two_sections_are_all_reported(tmp_path):
    path = write(
        tmp_path,
        """
        hub:
          port: 0
        demo:
          count: many
        """,
    )
    issues = load_config(path, SCHEMAS).issues
    assert [(i.line, i.key) for i in issues] == [(2, "hub.port"), (4, "demo.count")]
    assert len(format_issues(issues).splitlines()) == 2


def test_error_inside_a_list_names_index_and_line(tmp_path):
    path = write(
        tmp_path,
        """
        modbus:
          connections:
            - host: 10.0.0.5
              port: 502
            - host: 10.0.0.6
              port: 99999
        """,
    )
    result = load_config(path, SCHEMAS)
    issue = only_issue(result)
    assert (issue.line, issue.column, issue.key) == (6, 7, "modbus.connections[1].port")
    assert "less than or equal to 65535" in issue.message
    assert "modbus" not in result.plugin_configs


def test_missing_required_field_points_at_the_parent(tmp_path):
    path = write(
        tmp_path,
        """
        modbus:
          connections:
            - host: 10.0.0.5
            - port: 503
        """,
    )
    issue = only_issue(load_config(path, SCHEMAS))
    assert (issue.line, issue.key) == (4, "modbus.connections[1].host")
    assert issue.message == "Field required"


def test_wrong_container_type_points_at_the_key(tmp_path):
    path = write(tmp_path, "modbus:\n  connections: 10.0.0.5\n")
    issue = only_issue(load_config(path, SCHEMAS))
    assert (issue.line, issue.key) == (2, "modbus.connections")


def test_yaml_syntax_error_reports_its_line(tmp_path):
    path = write(
        tmp_path,
        """
        hub:
          name: Garage
          port: [8123
        demo:
        """,
    )
    result = load_config(path, SCHEMAS)
    issue = only_issue(result)
    assert issue.file == str(path)
    assert issue.line == 4
    assert issue.message.startswith("invalid YAML: ")
    assert result.core == CoreConfig()
    assert result.plugin_configs == {}


def test_control_character_reports_its_line(tmp_path):
    issue = only_issue(load_config(write(tmp_path, "hub:\n  name: a\x01b\n"), SCHEMAS))
    assert issue.line == 2
    assert issue.message == "invalid YAML: character #x0001 is not allowed"


def test_top_level_must_be_a_mapping(tmp_path):
    issue = only_issue(load_config(write(tmp_path, "- hub\n- demo\n"), SCHEMAS))
    assert issue.line == 1
    assert "top level must be a mapping" in issue.message


def test_duplicate_key_is_reported(tmp_path):
    path = write(
        tmp_path,
        """
        hub:
          port: 8200
          name: Garage
          port: 8300
        """,
    )
    result = load_config(path, SCHEMAS)
    issue = only_issue(result)
    assert (issue.line, issue.key) == (4, "hub.port")
    assert issue.message == "duplicate key 'port' (first at line 2)"
    assert not result.ok


def test_duplicate_section_is_reported(tmp_path):
    issue = only_issue(load_config(write(tmp_path, "demo:\nhub:\ndemo:\n"), SCHEMAS))
    assert (issue.line, issue.key) == (3, "demo")


def test_secret_is_resolved(tmp_path):
    write(tmp_path, "modbus_password: hunter2-long\nmodbus_port: 1502\n", name="secrets.yaml")
    path = write(
        tmp_path,
        """
        modbus:
          connections:
            - host: 10.0.0.5
              port: !secret modbus_port
              password: !secret modbus_password
        """,
    )
    result = load_config(path, SCHEMAS)
    assert result.ok, format_issues(result.issues)
    connection = result.plugin_configs["modbus"].connections[0]
    assert (connection.port, connection.password) == (1502, "hunter2-long")
    assert "hunter2-long" not in repr(result)


def test_secret_without_secrets_file(tmp_path):
    path = write(tmp_path, "hub:\n  name: !secret hub_name\n")
    issue = only_issue(load_config(path, SCHEMAS))
    assert (issue.line, issue.column, issue.key) == (2, 9, "hub.name")
    assert "'hub_name'" in issue.message
    assert "secrets.yaml" in issue.message


def test_secret_not_defined(tmp_path):
    write(tmp_path, "other: value\n", name="secrets.yaml")
    path = write(tmp_path, "hub:\n  port: 8200\n  name: !secret hub_name\n")
    issue = only_issue(load_config(path, SCHEMAS))
    assert (issue.line, issue.key) == (3, "hub.name")
    assert issue.message == f"secret 'hub_name' is not defined in {tmp_path / 'secrets.yaml'}"


def test_secret_value_never_appears_in_issues(tmp_path):
    write(
        tmp_path,
        "port: not-a-port-s3cr3t\nlevel: loud-s3cr3t\ntoken: short-s3cr3t\n",
        name="secrets.yaml",
    )
    path = write(
        tmp_path,
        """
        hub:
          port: !secret port
          log_level: !secret level
        echo:
          token: !secret token
        """,
    )
    issues = load_config(path, SCHEMAS).issues
    assert [(i.line, i.key) for i in issues] == [(2, "hub.port"), (3, "hub.log_level"), (5, "echo.token")]
    text = format_issues(issues) + str(ConfigError(issues))
    assert "s3cr3t" not in text
    assert "is too short" in text


def test_config_error_lists_issues_one_per_line(tmp_path):
    path = write(tmp_path, "hub:\n  port: x\n  bogus: 1\n")
    issues = check_config(path, SCHEMAS)
    error = ConfigError(issues)
    assert error.issues == issues
    assert str(error).splitlines() == [str(i) for i in issues]
    assert len(issues) == 2


def test_schemaless_plugin_needs_a_mapping(tmp_path):
    issue = only_issue(load_config(write(tmp_path, "raw: [1, 2]\n"), SCHEMAS))
    assert (issue.line, issue.key) == (1, "raw")


def test_merge_keys_work_without_false_duplicates(tmp_path):
    path = write(
        tmp_path,
        """
        modbus:
          connections:
            - &base
              host: 10.0.0.5
              port: 502
            - <<: *base
              port: 503
        """,
    )
    result = load_config(path, SCHEMAS)
    assert result.ok, format_issues(result.issues)
    assert [(c.host, c.port) for c in result.plugin_configs["modbus"].connections] == [
        ("10.0.0.5", 502),
        ("10.0.0.5", 503),
    ]


@pytest.mark.parametrize(
    ("text", "tag"), [("hub: !include other.yaml\n", "!include"), ("hub:\n  name: !env NAME\n", "!env")]
)
def test_unsupported_tag_is_one_issue(tmp_path, text, tag):
    issue = only_issue(load_config(write(tmp_path, text), SCHEMAS))
    assert issue.line is not None
    assert issue.message == f"unsupported tag '{tag}'"


def test_impossible_date_is_an_issue_not_a_crash(tmp_path):
    issue = only_issue(load_config(write(tmp_path, "raw:\n  since: 2024-13-45\n"), SCHEMAS))
    assert (issue.line, issue.key) == (2, "raw.since")


_YAMLISH = st.text(
    st.sampled_from(list("ab:- \n[]{},'\"!&*<>?#|~0123456789.\t")) | st.characters(codec="utf-8"),
    max_size=80,
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=_YAMLISH)
def test_any_text_gives_issues_never_an_exception(tmp_path, text):
    path = tmp_path / "configuration.yaml"
    path.write_text(text, encoding="utf-8")
    result = load_config(path, SCHEMAS)
    assert isinstance(result.core, CoreConfig)
    assert all(isinstance(issue.message, str) and str(issue) for issue in result.issues)


class _Line(BaseModel):
    model_config = ConfigDict(extra="forbid")
    port: str
    speed: int = 9600


class _Pump(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    line: str
    address: int = Field(1, ge=1, le=247)


class _PumpsConfig(BaseModel):
    """A plugin section whose pumps name lines: a cross-field check, as drivers have."""

    model_config = ConfigDict(extra="forbid")
    lines: dict[str, _Line]
    pumps: list[_Pump]

    @model_validator(mode="wrap")
    @classmethod
    def _references(cls, data, handler):
        def check(raw, model):
            lines = raw.get("lines") or {}
            places = []
            for index, pump in enumerate(raw.get("pumps") or []):
                fields = valid_fields(_Pump, pump, ["line", "address"])
                if "line" in fields and fields["line"] not in lines:
                    yield ("pumps", index, "line"), f"no line {fields['line']!r}"
                if "line" in fields and "address" in fields:
                    places.append((f"{fields['address']} on {fields['line']}", ("pumps", index, "address"), f"pumps[{index}]"))
            yield from duplicates(places, "address")

        return cross_checked(data, handler, check, cls.__name__)


def test_cross_field_problems_come_in_the_same_pass_as_type_errors_each_at_its_key(tmp_path):
    path = tmp_path / "configuration.yaml"
    path.write_text(textwrap.dedent("""\
        pumps:
          lines:
            a: {port: /dev/ttyUSB0, speed: fast}
          pumps:
            - {name: p1, line: b}
            - {name: p2, line: a, address: 3}
            - name: p3
              line: a
              address: 3
              colour: red
        """))
    found = [str(i) for i in load_config(path, {"pumps": _PumpsConfig}).issues]
    assert [f.split(": ")[0].split(":", 1)[1] + " " + f.split(": ")[1] for f in found] == [
        "3:29 pumps.lines.a.speed",
        "5:18 pumps.pumps[0].line",
        "6:27 pumps.pumps[1].address",
        "9:7 pumps.pumps[2].address",
        "10:7 pumps.pumps[2].colour",
    ], found
    assert "no line 'b'" in found[1] and "address 3 on a is also used by pumps[2]" in found[2]
    # The model still validates as any pydantic model, outside the configuration file too.
    assert _PumpsConfig.model_validate({"lines": {"a": {"port": "x"}}, "pumps": [{"name": "p", "line": "a"}]})

"""Patterns, templates, framing and configuration of the serial driver, without a port."""

import asyncio
import re
from pathlib import Path

import pytest
from pydantic import ValidationError

from hub.config import load_config
from hub_serial import patterns
from hub_serial.config import EntityConfig, PortConfig, SerialConfig
from hub_serial.framing import Framer, FrameTooLong


def entity(**kw):
    return EntityConfig(**{"key": "x", **kw})


def test_numbers_scale_and_extra_groups_become_attributes():
    e = entity(pattern=r"T=(?P<value>-?[0-9.]+) B=(?P<battery>\d+)", scale=1.0)
    assert patterns.match(e, re.compile(e.pattern), "id=3 T=-4.5 B=87") == (-4.5, {"battery": 87})
    assert patterns.match(e, re.compile(e.pattern), "H=40") is None
    counter = entity(pattern=r"N=(?P<value>\d+)", capability="meter")
    assert patterns.match(counter, re.compile(counter.pattern), "N=42") == (42, {})
    tenths = entity(pattern=r"(?P<value>\d+)", scale=0.1)
    assert patterns.convert(tenths, "215") == (pytest.approx(21.5), {})


def test_on_off_words_and_value_map():
    sw = entity(capability="switch", pattern="(?P<value>.*)")
    assert patterns.convert(sw, "ON") == ("on", {})
    assert patterns.convert(sw, "0") == ("off", {})
    with pytest.raises(ValueError, match="value_map"):
        patterns.convert(sw, "ajar")
    door = entity(capability="binary_sensor", pattern="(?P<value>.*)", value_map={"ajar": "on", "shut": "off"})
    assert patterns.convert(door, "ajar") == ("on", {})


def test_climate_reports_its_set_point_as_an_attribute():
    c = entity(capability="climate", pattern="SP=(?P<value>.*)", hvac_mode="cool")
    assert patterns.convert(c, "22.5")[0] == "cool"
    assert patterns.convert(c, "22.5")[1]["target_temperature"] == 22.5


def test_templates_fill_names_only():
    assert patterns.render("SP {temperature}", {"temperature": 22.0}) == "SP 22"
    assert patterns.render("SP {temperature}", {"temperature": 22.5}) == "SP 22.5"
    assert patterns.render("{x.__class__}", {"x": 1}) == "{x.__class__}"  # not a placeholder: left alone


def test_configuration_checks_regexes_commands_and_placeholders():
    with pytest.raises(ValidationError, match="regular expression"):
        entity(pattern="T=(?P<value>[0-9.]+")
    with pytest.raises(ValidationError, match="named group"):
        entity(pattern="T=([0-9.]+)")
    with pytest.raises(ValidationError, match="switch has no command 'set_temperature'"):
        entity(capability="switch", commands={"set_temperature": {"send": "x"}})
    with pytest.raises(ValidationError, match="uses {temp}"):
        entity(capability="climate", pattern="(?P<value>.*)", commands={"set_temperature": {"send": "SP {temp}"}})
    with pytest.raises(ValidationError, match="port '/dev/x' is also used by"):
        SerialConfig(ports=[{"name": "a", "port": "/dev/x", "entities": [{"key": "a", "pattern": "(?P<value>.)"}]},
                            {"name": "b", "port": "/dev/x", "entities": [{"key": "a", "pattern": "(?P<value>.)"}]}])


def test_config_errors_are_located(tmp_path: Path):
    path = tmp_path / "configuration.yaml"
    path.write_text("serial:\n  ports:\n    - name: a\n      port: /dev/x\n      baud: 9600\n"
                    "      entities: [{key: t, pattern: 'T=(?P<value>.*)'}]\n")
    (issue,) = load_config(path, {"serial": SerialConfig}).issues
    assert (issue.line, issue.key) == (5, "serial.ports[0].baud")


def framer(**kw) -> Framer:
    return Framer(PortConfig(name="p", port="/dev/x", entities=[{"key": "a", "pattern": "(?P<value>.)"}], **kw))


async def frames(f: Framer, data: bytes) -> list[bytes]:
    reader = asyncio.StreamReader(limit=f.config.max_frame + 2)
    reader.feed_data(data)
    reader.feed_eof()
    out = []
    while True:
        try:
            out.append(await f.read(reader))
        except asyncio.IncompleteReadError:
            return out
        except FrameTooLong:
            out.append(b"<dropped>")


async def test_line_framing_with_any_terminator():
    crlf = framer(terminator="\r\n")
    assert crlf.encode("RELAY ON") == b"RELAY ON\r\n"
    assert await frames(crlf, b"A=1\r\nB=2\r\npartial") == [b"A=1", b"B=2"]


async def test_length_prefixed_frames_may_contain_the_terminator():
    f = framer(framing="length_prefixed", length_bytes=2)
    assert f.encode("a\nb") == b"\x00\x03a\nb"
    assert await frames(f, b"\x00\x03a\nb\x00\x01c") == [b"a\nb", b"c"]
    with pytest.raises(ValueError):
        framer(framing="length_prefixed").encode("x" * 300)


async def test_an_overlong_frame_is_dropped_and_the_stream_stays_in_step():
    f = framer(max_frame=16)
    assert await frames(f, b"x" * 40 + b"\nOK\n") == [b"<dropped>", b"OK"]
    g = framer(framing="length_prefixed", max_frame=16)
    assert (await frames(g, b"\x20" + b"y" * 32))[0] == b"<dropped>"

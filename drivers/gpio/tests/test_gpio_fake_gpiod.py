"""The fake gpiod against gpio_sim.py: the same names and semantics as gpiod 2.x, so what passes on
the fake is what the driver does on a real chip."""

from __future__ import annotations

import dataclasses
import errno
import time
from datetime import timedelta

import gpiod as real
import pytest

from gpio_testing import load_fake_gpiod
from gpio_board import GpioBoard

fake = load_fake_gpiod()
L = fake.line


@pytest.fixture
def chip(tmp_path, monkeypatch):
    board = GpioBoard(tmp_path)
    board.dev.mkdir()
    from hil import Simulator

    board.sim = Simulator("gpio_sim.py", ["--control", f"127.0.0.1:{board.control_port}", "--chip",
                                          "gpiochip0=pinctrl-rp1:GPIO0,GPIO1,GPIO2,GPIO3,GPIO4,GPIO5",
                                          "--dev-dir", str(board.dev)], tmp_path).start()
    monkeypatch.setenv("FAKE_GPIOD_SIM", f"127.0.0.1:{board.control_port}")
    with fake.Chip(str(board.dev / "gpiochip0")) as c:
        yield board, c
    board.sim.stop()


def test_the_fake_has_the_real_packages_names_and_fields():
    for name in ("Chip", "LineSettings", "LineRequest", "EdgeEvent", "ChipInfo", "LineInfo", "request_lines",
                 "is_gpiochip_device", "ChipClosedError", "RequestReleasedError"):
        assert hasattr(fake, name), name
    for enum in ("Value", "Direction", "Bias", "Drive", "Edge", "Clock"):
        assert [m.name for m in getattr(real.line, enum)] == [m.name for m in getattr(L, enum)], enum
    for cls in ("LineSettings", "ChipInfo"):
        assert [f.name for f in dataclasses.fields(getattr(real, cls))] == \
               [f.name for f in dataclasses.fields(getattr(fake, cls))], cls
    assert list(real.EdgeEvent.__annotations__) == list(fake.EdgeEvent.__annotations__)
    assert list(real.LineInfo.__annotations__) == list(fake.LineInfo.__annotations__)
    assert [m.name for m in real.EdgeEvent.Type] == [m.name for m in fake.EdgeEvent.Type]
    for method in ("get_info", "get_line_info", "line_offset_from_id", "request_lines", "close", "fileno"):
        assert hasattr(real.Chip, method) and hasattr(fake.Chip, method), method
    for method in ("get_value", "get_values", "set_value", "set_values", "reconfigure_lines", "wait_edge_events",
                   "read_edge_events", "release", "fileno"):
        assert hasattr(real.LineRequest, method) and hasattr(fake.LineRequest, method), method


def test_edge_events_carry_type_timestamp_offset_and_sequence_numbers(chip):
    board, c = chip
    settings = fake.LineSettings(direction=L.Direction.INPUT, edge_detection=L.Edge.BOTH, bias=L.Bias.PULL_UP,
                                 active_low=True)
    with c.request_lines({"GPIO3": settings}, consumer="test") as request:
        assert request.get_value("GPIO3") == L.Value.INACTIVE  # pulled up, active low: not pressed
        assert not request.wait_edge_events(0.05)
        before = time.monotonic_ns()
        board.call("press", line=3)
        board.call("release", line=3)
        assert request.wait_edge_events(timedelta(seconds=2))
        events = request.read_edge_events()
        while len(events) < 2 and request.wait_edge_events(2):
            events += request.read_edge_events()
        assert [e.event_type for e in events] == [fake.EdgeEvent.Type.RISING_EDGE, fake.EdgeEvent.Type.FALLING_EDGE]
        assert [e.line_offset for e in events] == [3, 3] and [e.line_seqno for e in events] == [1, 2]
        assert events[1].global_seqno == events[0].global_seqno + 1
        assert before <= events[0].timestamp_ns <= events[1].timestamp_ns <= time.monotonic_ns()  # CLOCK_MONOTONIC
        info = c.get_line_info(3)
        assert info.used and info.consumer == "test" and info.bias == L.Bias.PULL_UP and info.active_low
    assert not c.get_line_info(3).used  # released with the request


def test_debounce_reports_one_edge_for_a_bouncing_contact(chip):
    board, c = chip
    settings = fake.LineSettings(direction=L.Direction.INPUT, edge_detection=L.Edge.BOTH, bias=L.Bias.PULL_UP,
                                 debounce_period=timedelta(milliseconds=20))
    with c.request_lines({2: settings}) as request:
        board.call("bounce", line=2, level=0, edges=7)
        assert request.wait_edge_events(1)
        time.sleep(0.1)
        events = request.read_edge_events()
        assert [e.event_type for e in events] == [fake.EdgeEvent.Type.FALLING_EDGE]
        assert c.get_line_info(2).debounce_period == timedelta(milliseconds=20)


def test_outputs_drive_the_line_with_active_low(chip):
    board, c = chip
    with c.request_lines({4: fake.LineSettings(direction=L.Direction.OUTPUT, active_low=True)},
                         output_values={4: L.Value.ACTIVE}) as request:
        assert board.call("level", line=4)["level"] == 0
        request.set_value(4, L.Value.INACTIVE)
        assert board.call("level", line=4)["level"] == 1 and request.get_value(4) == L.Value.INACTIVE


def test_what_the_kernel_refuses_the_fake_refuses(chip):
    board, c = chip
    out_with_edges = fake.LineSettings(direction=L.Direction.OUTPUT, edge_detection=L.Edge.BOTH)
    with pytest.raises(OSError) as exc:
        c.request_lines({1: out_with_edges})
    assert exc.value.errno == errno.EINVAL
    with pytest.raises(OSError) as exc:
        c.request_lines({1: fake.LineSettings(direction=L.Direction.INPUT, drive=L.Drive.OPEN_DRAIN)})
    assert exc.value.errno == errno.EINVAL
    with pytest.raises(ValueError):
        c.request_lines({9: None})  # the chip has 6 lines
    with pytest.raises(ValueError, match="exactly once"):
        c.request_lines({1: None, "GPIO1": None})
    with c.request_lines({1: fake.LineSettings(direction=L.Direction.INPUT)}) as request:
        with pytest.raises(OSError) as exc:
            c.request_lines({1: None})
        assert exc.value.errno == errno.EBUSY
        with pytest.raises(OSError) as exc:
            request.set_value(1, L.Value.ACTIVE)  # an input
    with pytest.raises(fake.RequestReleasedError):
        request.get_value(1)
    with pytest.raises(FileNotFoundError):
        fake.Chip(str(board.dev / "gpiochip7"))
    assert fake.is_gpiochip_device(str(board.dev / "gpiochip0"))
    assert not fake.is_gpiochip_device(str(board.dev / "gpiochip7"))

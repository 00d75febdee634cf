"""A fake of gpiod 2.x (libgpiod v2's Python bindings) that talks to ``gpio_sim.py`` over a socket.

Put this folder first on ``PYTHONPATH`` and set ``FAKE_GPIOD_SIM=127.0.0.1:PORT``: ``import gpiod`` then
gets this package, and the hub's GPIO driver runs unchanged against the simulated chip. It has the
names and semantics of the real package that the driver (and a user's script) relies on: ``Chip``
(``get_info``, ``get_line_info``, ``line_offset_from_id``, ``request_lines``), ``LineSettings``,
``LineRequest`` (``get_value(s)``, ``set_value(s)``, ``reconfigure_lines``, ``wait_edge_events``,
``read_edge_events``, ``fd``/``fileno``, ``release``, context managers), ``EdgeEvent`` with its five
fields, ``ChipInfo``, ``LineInfo``, ``is_gpiochip_device``, ``request_lines`` and the errors the
kernel gives (a missing chip: ``FileNotFoundError``; a line in use: ``OSError(EBUSY)``; settings the
kernel refuses: ``OSError(EINVAL)``; an offset out of range: ``ValueError``).

A request's edge events arrive on a socket of their own: its fd is the request's ``fd``, so
``select``/``add_reader`` on it behaves as on the real request's file descriptor.
"""

from __future__ import annotations

import errno
import json
import os
import select
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta
from enum import Enum

from . import line
from .line import Bias, Clock, Direction, Drive, Edge, Value

__version__ = "2.5.0"
api_version = "2.5.0-fake"

__all__ = ["Chip", "ChipInfo", "LineInfo", "LineSettings", "LineRequest", "EdgeEvent", "ChipClosedError",
           "RequestReleasedError", "is_gpiochip_device", "request_lines", "line", "api_version", "__version__"]


class ChipClosedError(Exception):
    def __init__(self) -> None:
        super().__init__("I/O operation on closed chip")


class RequestReleasedError(Exception):
    def __init__(self) -> None:
        super().__init__("GPIO lines have been released")


def _address() -> tuple[str, int]:
    where = os.environ.get("FAKE_GPIOD_SIM")
    if not where:
        raise OSError(errno.ENODEV, "fake gpiod: FAKE_GPIOD_SIM (HOST:PORT of gpio_sim.py) is not set")
    host, _, port = where.rpartition(":")
    return host, int(port)


class _Conn:
    """One JSON-lines connection to the simulator."""

    def __init__(self) -> None:
        self.sock = socket.create_connection(_address(), timeout=10)
        self.buf = b""

    def call(self, op: str, **fields):
        self.sock.sendall((json.dumps({"op": op, **fields}) + "\n").encode())
        answer = json.loads(self.readline())
        if not answer.pop("ok"):
            error = answer["error"]
            kind, _, text = error.partition(": ")
            if kind == "LookupError" and "no chip" in text:
                raise FileNotFoundError(errno.ENOENT, "No such file or directory")
            if kind == "LookupError" and "no line named" in text:
                raise FileNotFoundError(errno.ENOENT, "No such file or directory")  # as gpiod: an unknown name
            if kind == "LookupError":
                raise ValueError("line offset of out range")
            if kind == "BlockingIOError":
                raise OSError(errno.EBUSY, "Device or resource busy")
            if kind == "PermissionError":
                raise OSError(errno.EPERM, "Operation not permitted")
            raise OSError(errno.EIO, error)
        return answer

    def readline(self) -> bytes:
        while b"\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise OSError(errno.EIO, "fake gpiod: the simulated chip went away")
            self.buf += chunk
        line_, _, self.buf = self.buf.partition(b"\n")
        return line_

    def close(self) -> None:
        self.sock.close()


def _chip_name(path: str) -> str:
    return os.path.basename(os.path.realpath(path)) if os.path.exists(path) else os.path.basename(path)


def is_gpiochip_device(path: str) -> bool:
    if not os.path.exists(path):
        return False
    try:
        conn = _Conn()
    except OSError:
        return False
    try:
        conn.call("chip_info", chip=_chip_name(path))
        return True
    except OSError:
        return False
    finally:
        conn.close()


@dataclass(frozen=True, repr=False)
class ChipInfo:
    name: str
    label: str
    num_lines: int

    def __str__(self) -> str:
        return f'<ChipInfo name="{self.name}" label="{self.label}" num_lines={self.num_lines}>'


_DIRECTION = {"input": Direction.INPUT, "output": Direction.OUTPUT, "as_is": Direction.AS_IS}
_BIAS = {"as_is": Bias.AS_IS, "unknown": Bias.UNKNOWN, "disabled": Bias.DISABLED, "pull_up": Bias.PULL_UP,
         "pull_down": Bias.PULL_DOWN}
_DRIVE = {"push_pull": Drive.PUSH_PULL, "open_drain": Drive.OPEN_DRAIN, "open_source": Drive.OPEN_SOURCE}
_EDGE = {"none": Edge.NONE, "rising": Edge.RISING, "falling": Edge.FALLING, "both": Edge.BOTH}


def _key(table: dict, value: Enum) -> str:
    return next(k for k, v in table.items() if v is value)


@dataclass(frozen=True, repr=False)
class LineInfo:
    offset: int
    name: str
    used: bool
    consumer: str
    direction: Direction
    active_low: bool
    bias: Bias
    drive: Drive
    edge_detection: Edge
    event_clock: Clock
    debounced: bool
    debounce_period: timedelta

    @classmethod
    def _from(cls, d: dict) -> "LineInfo":
        return cls(d["offset"], d["name"], d["used"], d["consumer"], _DIRECTION[d["direction"]], d["active_low"],
                   _BIAS[d["bias"]], _DRIVE[d["drive"]], _EDGE[d["edge_detection"]], Clock.MONOTONIC,
                   bool(d["debounce_us"]), timedelta(microseconds=d["debounce_us"]))

    def __str__(self) -> str:
        return (f'<LineInfo offset={self.offset} name="{self.name}" used={self.used} consumer="{self.consumer}" '
                f"direction={self.direction} active_low={self.active_low} bias={self.bias}>")


@dataclass(repr=False)
class LineSettings:
    direction: Direction = Direction.AS_IS
    edge_detection: Edge = Edge.NONE
    bias: Bias = Bias.AS_IS
    drive: Drive = Drive.PUSH_PULL
    active_low: bool = False
    debounce_period: timedelta = timedelta()
    event_clock: Clock = Clock.MONOTONIC
    output_value: Value = Value.INACTIVE

    def __repr__(self) -> str:
        return (f"gpiod.LineSettings(direction={self.direction}, edge_detection={self.edge_detection}, "
                f"bias={self.bias}, active_low={self.active_low}, debounce_period={self.debounce_period!r})")


def _wire(offset: int, s: LineSettings, output: Value | None) -> dict:
    """The kernel's checks of a line config (gpio_v2_line_flags_validate): what it refuses, we refuse."""
    for name, kind in (("direction", Direction), ("edge_detection", Edge), ("bias", Bias), ("drive", Drive),
                       ("event_clock", Clock)):
        if not isinstance(getattr(s, name), kind):
            raise TypeError(f"LineSettings.{name} must be a gpiod.line.{kind.__name__}")
    if s.edge_detection is not Edge.NONE and s.direction is not Direction.INPUT:
        raise OSError(errno.EINVAL, "Invalid argument (edge detection needs an input line)")
    if s.drive is not Drive.PUSH_PULL and s.direction is not Direction.OUTPUT:
        raise OSError(errno.EINVAL, "Invalid argument (open drain/source needs an output line)")
    if s.bias is not Bias.AS_IS and s.direction is Direction.AS_IS:
        raise OSError(errno.EINVAL, "Invalid argument (bias needs a direction)")
    if s.debounce_period and s.direction is not Direction.INPUT:
        raise OSError(errno.EINVAL, "Invalid argument (debounce needs an input line)")
    if s.event_clock is Clock.HTE:
        raise OSError(errno.EOPNOTSUPP, "Operation not supported (no hardware timestamp engine)")
    value = s.output_value if output is None else output
    return {"offset": offset, "direction": _key(_DIRECTION, s.direction), "edge": _key(_EDGE, s.edge_detection),
            "bias": _key(_BIAS, s.bias), "drive": _key(_DRIVE, s.drive), "active_low": bool(s.active_low),
            "debounce_us": int(s.debounce_period.total_seconds() * 1_000_000), "output": value.value}


@dataclass(frozen=True, init=False, repr=False)
class EdgeEvent:
    class Type(Enum):
        RISING_EDGE = 1
        FALLING_EDGE = 2

    event_type: Type
    timestamp_ns: int
    line_offset: int
    global_seqno: int
    line_seqno: int

    def __init__(self, event_type, timestamp_ns: int, line_offset: int, global_seqno: int, line_seqno: int):
        object.__setattr__(self, "event_type", EdgeEvent.Type(event_type))
        object.__setattr__(self, "timestamp_ns", timestamp_ns)
        object.__setattr__(self, "line_offset", line_offset)
        object.__setattr__(self, "global_seqno", global_seqno)
        object.__setattr__(self, "line_seqno", line_seqno)

    def __str__(self) -> str:
        return (f"<EdgeEvent type={self.event_type} timestamp_ns={self.timestamp_ns} line_offset={self.line_offset} "
                f"global_seqno={self.global_seqno} line_seqno={self.line_seqno}>")


def _config_iter(config: dict) -> Iterable[tuple[int | str, LineSettings | None]]:
    for key, settings in config.items():
        if isinstance(key, (int, str)):
            yield key, settings
        else:
            for line_ in key:
                yield line_, settings


class Chip:
    def __init__(self, path: str):
        if not os.path.exists(path):
            raise FileNotFoundError(errno.ENOENT, "No such file or directory", path)
        self._path = path
        self._name = _chip_name(path)
        self._conn: _Conn | None = _Conn()
        try:
            self._conn.call("chip_info", chip=self._name)
        except FileNotFoundError:
            self._conn.close()
            self._conn = None
            raise OSError(errno.ENODEV, "No such device (not a GPIO chip)", path) from None

    def __bool__(self) -> bool:
        return self._conn is not None

    def __enter__(self) -> "Chip":
        self._check_closed()
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _check_closed(self) -> None:
        if self._conn is None:
            raise ChipClosedError()

    def close(self) -> None:
        self._check_closed()
        self._conn.close()
        self._conn = None

    def get_info(self) -> ChipInfo:
        self._check_closed()
        d = self._conn.call("chip_info", chip=self._name)
        return ChipInfo(d["name"], d["label"], d["num_lines"])

    def line_offset_from_id(self, id: str | int) -> int:
        self._check_closed()
        return self._conn.call("offset", chip=self._name, line=id)["offset"]

    def get_line_info(self, line: int | str) -> LineInfo:
        self._check_closed()
        return LineInfo._from(self._conn.call("line_info", chip=self._name, line=line)["info"])

    def request_lines(self, config: dict, consumer: str | None = None, event_buffer_size: int | None = None,
                      output_values: dict | None = None) -> "LineRequest":
        self._check_closed()
        outputs = {self.line_offset_from_id(k): v for k, v in (output_values or {}).items()}
        wire, seen, lines, names = [], set(), [], {}
        for key, settings in _config_iter(config):
            offset = self.line_offset_from_id(key)
            if offset in seen:
                raise ValueError(f"line must be configured exactly once - offset {offset} repeats")
            seen.add(offset)
            lines.append(key)
            if isinstance(key, str):
                names[key] = offset
            wire.append(_wire(offset, settings or LineSettings(), outputs.get(offset)))
        conn = _Conn()
        try:
            answer = conn.call("request", chip=self._name, config=wire, consumer=consumer or "")
        except BaseException:
            conn.close()
            raise
        return LineRequest(conn, self._name, answer["request"], answer["offsets"], lines, names)

    def fileno(self) -> int:
        self._check_closed()
        return self._conn.sock.fileno()

    @property
    def path(self) -> str:
        return self._path

    @property
    def fd(self) -> int:
        return self.fileno()

    def __repr__(self) -> str:
        return f'gpiod.Chip("{self._path}")'


class LineRequest:
    def __init__(self, conn: _Conn, chip_name: str, request_id: int, offsets: list[int], lines: list,
                 names: dict[str, int]) -> None:
        self._conn: _Conn | None = conn
        self._id = request_id
        self._chip_name = chip_name
        self._offsets = offsets
        self._lines = lines
        self._name_map = names
        self._events = _Conn()
        self._events.sock.sendall((json.dumps({"op": "events", "request": request_id}) + "\n").encode())

    def __bool__(self) -> bool:
        return self._conn is not None

    def __enter__(self) -> "LineRequest":
        self._check_released()
        return self

    def __exit__(self, *exc) -> None:
        self.release()

    def _check_released(self) -> None:
        if self._conn is None:
            raise RequestReleasedError()

    def release(self) -> None:
        self._check_released()
        try:
            self._conn.call("release", request=self._id)
        except OSError:
            pass  # the chip went away: the lines are free anyway
        self._conn.close()
        self._events.close()
        self._conn = None

    def _line_to_offset(self, line_: int | str) -> int:
        if isinstance(line_, int):
            return line_
        if (offset := self._name_map.get(line_)) is None:
            raise ValueError(f"unknown line name: {line_}")
        return offset

    def get_value(self, line_: int | str) -> Value:
        return self.get_values([line_])[0]

    def get_values(self, lines: Iterable[int | str] | None = None) -> list[Value]:
        self._check_released()
        offsets = [self._line_to_offset(x) for x in (lines or self._lines)]
        return [Value(v) for v in self._conn.call("get", request=self._id, offsets=offsets)["values"]]

    def set_value(self, line_: int | str, value: Value) -> None:
        self.set_values({line_: value})

    def set_values(self, values: dict[int | str, Value]) -> None:
        self._check_released()
        if not all(isinstance(v, Value) for v in values.values()):
            raise TypeError("values must be gpiod.line.Value")
        wire = {str(self._line_to_offset(k)): v.value for k, v in values.items()}
        self._conn.call("set", request=self._id, values=wire)

    def reconfigure_lines(self, config: dict) -> None:
        self._check_released()
        given = {self._line_to_offset(k): s for k, s in _config_iter(config)}
        wire = [_wire(o, given.get(o) or LineSettings(), None) for o in self._offsets]
        self._conn.call("reconfigure", request=self._id, config=wire)

    def wait_edge_events(self, timeout: timedelta | float | None = None) -> bool:
        self._check_released()
        if self._events.buf.count(b"\n"):
            return True
        if isinstance(timeout, timedelta):
            timeout = timeout.total_seconds()
        ready, _, _ = select.select([self._events.sock], [], [], timeout)
        return bool(ready)

    def read_edge_events(self, max_events: int | None = None) -> list[EdgeEvent]:
        """Blocks until at least one event, then returns what has arrived (up to ``max_events``), as
        the kernel's read() of the request's fd does."""
        self._check_released()
        events = [self._events.readline()]
        self._events.sock.setblocking(False)
        try:
            while True:
                self._events.buf += self._events.sock.recv(65536)
        except (BlockingIOError, InterruptedError):
            pass
        finally:
            self._events.sock.setblocking(True)
            self._events.sock.settimeout(10)
        while b"\n" in self._events.buf and (max_events is None or len(events) < max_events):
            events.append(self._events.readline())
        kinds = {"rising": EdgeEvent.Type.RISING_EDGE.value, "falling": EdgeEvent.Type.FALLING_EDGE.value}
        out = []
        for raw in events:
            d = json.loads(raw)
            out.append(EdgeEvent(kinds[d["event_type"]], d["timestamp_ns"], d["line_offset"], d["global_seqno"],
                                 d["line_seqno"]))
        return out

    def fileno(self) -> int:
        return self.fd

    @property
    def chip_name(self) -> str:
        self._check_released()
        return self._chip_name

    @property
    def num_lines(self) -> int:
        return len(self._offsets)

    @property
    def offsets(self) -> list[int]:
        return list(self._offsets)

    @property
    def lines(self) -> list[int | str]:
        return list(self._lines)

    @property
    def fd(self) -> int:
        self._check_released()
        return self._events.sock.fileno()

    def __str__(self) -> str:
        return f'<LineRequest chip="{self._chip_name}" num_lines={self.num_lines} offsets={self._offsets}>'


def request_lines(path: str, config: dict, consumer: str | None = None, event_buffer_size: int | None = None,
                  output_values: dict | None = None) -> LineRequest:
    with Chip(path) as chip:
        return chip.request_lines(config, consumer, event_buffer_size, output_values)

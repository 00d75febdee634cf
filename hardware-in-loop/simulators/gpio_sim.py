"""A GPIO chip in its own process: what the fake ``gpiod`` package (``fake_gpiod/``) talks to.

There is no gpio-sim kernel module on CI, so this process plays the kernel's GPIO character device:
chips with lines, each line's physical level, pull-up/down bias, active-low inversion, edge detection
with the kernel's debounce (an edge is reported once the level held for the debounce period) and
timestamps from CLOCK_MONOTONIC (the kernel's default event clock, so another process on the machine
can compare them with ``time.monotonic_ns()``), and one event stream per line request.

One JSON object a line over TCP on loopback, one JSON answer a line. The fake ``gpiod`` uses
``chip_info``, ``line_info``, ``request``, ``get``, ``set``, ``reconfigure``, ``release`` and ``events``
(that connection then carries the request's edge events). What a user's hands and a probe do:

``press``/``release`` {chip, line}: a button between the line and the rail opposite its bias;
``drive`` {chip, line, level}: an external signal (a PIR's output) sets the level;
``bounce`` {chip, line, level, edges}: a contact bouncing ``edges`` times (back to back) before it rests
at ``level``; ``level`` {chip, line}: the physical level of a line (a relay driven by an output);
``chips``: every chip and its lines' state.

    python gpio_sim.py --control 127.0.0.1:PORT --chip gpiochip0=pinctrl-rp1:54 [--dev-dir DIR]

``--dev-dir`` gets an empty file per chip (``DIR/gpiochip0``), standing in for ``/dev``'s nodes.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import time
from dataclasses import dataclass, field
from pathlib import Path

EDGE_NONE, EDGE_RISING, EDGE_FALLING, EDGE_BOTH = "none", "rising", "falling", "both"


@dataclass
class Line:
    offset: int
    name: str
    level: int = 0  # physical: 0 V or 3.3 V
    driven: int | None = None  # set by an external signal (press, drive); None: the bias decides
    request: "Request | None" = None
    settings: dict = field(default_factory=dict)
    reported: int = 0  # the logical value of the last edge reported (debounce compares with it)
    timer: asyncio.TimerHandle | None = None
    seqno: int = 0

    @property
    def active_low(self) -> bool:
        return bool(self.settings.get("active_low"))

    @property
    def logical(self) -> int:
        return self.level ^ int(self.active_low)

    def resting_level(self) -> int:
        if self.settings.get("direction") == "output":
            return self.level
        if self.driven is not None:
            return self.driven
        bias = self.settings.get("bias", "as_is")
        return 1 if bias == "pull_up" else 0 if bias == "pull_down" else self.level


@dataclass
class Chip:
    name: str
    label: str
    lines: list[Line]


class Request:
    ids = itertools.count(1)

    def __init__(self, chip: Chip, offsets: list[int], consumer: str) -> None:
        self.id = next(self.ids)
        self.chip = chip
        self.offsets = offsets
        self.consumer = consumer
        self.streams: list[asyncio.StreamWriter] = []
        self.pending: list[str] = []  # events before the stream connected: the kernel buffers them


class Sim:
    def __init__(self, chips: list[Chip]) -> None:
        self.chips = {c.name: c for c in chips}
        self.requests: dict[int, Request] = {}
        self.global_seqno = 0

    # --- the kernel side -------------------------------------------------------------------------
    def chip(self, name: str) -> Chip:
        if name not in self.chips:
            raise LookupError(f"no chip {name!r} (have {', '.join(self.chips)})")
        return self.chips[name]

    def line(self, chip: str, offset) -> Line:
        c = self.chip(chip)
        if isinstance(offset, str) and not offset.isdigit():
            for line in c.lines:
                if line.name == offset:
                    return line
            raise LookupError(f"no line named {offset!r} on {chip}")
        offset = int(offset)
        if not 0 <= offset < len(c.lines):
            raise LookupError(f"{chip} has lines 0..{len(c.lines) - 1}, not {offset}")
        return c.lines[offset]

    def line_info(self, line: Line) -> dict:
        s = line.settings
        return {"offset": line.offset, "name": line.name, "used": line.request is not None,
                "consumer": line.request.consumer if line.request else "",
                "direction": s.get("direction", "input"), "active_low": line.active_low,
                "bias": s.get("bias", "unknown"), "drive": s.get("drive", "push_pull"),
                "edge_detection": s.get("edge", EDGE_NONE), "debounce_us": s.get("debounce_us", 0)}

    def configure(self, line: Line, settings: dict) -> None:
        line.settings = settings
        if settings.get("direction") == "output":
            line.level = int(settings.get("output", 0)) ^ int(line.active_low)
        else:
            line.level = line.resting_level()
        line.reported = line.logical

    def request(self, chip: str, config: list[dict], consumer: str) -> Request:
        c = self.chip(chip)
        lines = [self.line(chip, item["offset"]) for item in config]
        busy = [line.offset for line in lines if line.request is not None]
        if busy:
            raise BlockingIOError(f"EBUSY: lines {busy} of {chip} are in use")
        req = Request(c, [line.offset for line in lines], consumer or "?")
        for line, item in zip(lines, config):
            line.request = req
            self.configure(line, item)
        self.requests[req.id] = req
        return req

    def release(self, req: Request) -> None:
        for offset in req.offsets:
            line = req.chip.lines[offset]
            line.request = None
            if line.timer:
                line.timer.cancel()
        for writer in req.streams:
            writer.close()
        self.requests.pop(req.id, None)

    def set_level(self, line: Line, level: int) -> int:
        """The physical level changes now; returns the edge's timestamp (ns, CLOCK_MONOTONIC)."""
        now = time.monotonic_ns()
        if line.settings.get("direction") == "output" or level == line.level:
            return now
        line.level = level
        debounce = line.settings.get("debounce_us", 0)
        if line.timer:
            line.timer.cancel()
            line.timer = None
        if debounce:
            line.timer = asyncio.get_running_loop().call_later(debounce / 1e6, self._settled, line)
        else:
            self._report(line, now)
        return now

    def _settled(self, line: Line) -> None:
        line.timer = None
        self._report(line, time.monotonic_ns())

    def _report(self, line: Line, ts: int) -> None:
        value = line.logical
        if value == line.reported:
            return
        line.reported = value
        edge = line.settings.get("edge", EDGE_NONE)
        kind = EDGE_RISING if value else EDGE_FALLING
        if line.request is None or edge not in (kind, EDGE_BOTH):
            return
        self.global_seqno += 1
        line.seqno += 1
        event = json.dumps({"event_type": kind, "timestamp_ns": ts, "line_offset": line.offset,
                            "global_seqno": self.global_seqno, "line_seqno": line.seqno}) + "\n"
        req = line.request
        if not req.streams:
            req.pending.append(event)
        for writer in req.streams:
            writer.write(event.encode())

    # --- the control protocol --------------------------------------------------------------------
    async def control(self, msg: dict, writer: asyncio.StreamWriter) -> dict | None:
        op = msg.get("op")
        if op == "chips":
            return {"chips": [{"name": c.name, "label": c.label, "num_lines": len(c.lines),
                               "lines": [self.line_info(l) | {"level": l.level} for l in c.lines]}
                              for c in self.chips.values()]}
        if op == "chip_info":
            c = self.chip(msg["chip"])
            return {"name": c.name, "label": c.label, "num_lines": len(c.lines)}
        if op == "line_info":
            return {"info": self.line_info(self.line(msg["chip"], msg["line"]))}
        if op == "offset":
            return {"offset": self.line(msg["chip"], msg["line"]).offset}
        if op == "request":
            req = self.request(msg["chip"], msg["config"], msg.get("consumer") or "")
            req.owner = writer
            return {"request": req.id, "offsets": req.offsets}
        if op in ("get", "set", "release", "reconfigure", "events"):
            req = self.requests.get(msg.get("request"))
            if req is None:
                raise LookupError(f"no request {msg.get('request')}")
            if op == "get":
                return {"values": [req.chip.lines[o].logical for o in msg["offsets"]]}
            if op == "set":
                for offset, value in msg["values"].items():
                    line = req.chip.lines[int(offset)]
                    if line.settings.get("direction") != "output":
                        raise PermissionError(f"EPERM: line {offset} is not an output")
                    line.level = int(value) ^ int(line.active_low)
                return {}
            if op == "reconfigure":
                for item in msg["config"]:
                    self.configure(req.chip.lines[item["offset"]], item)
                return {}
            if op == "release":
                self.release(req)
                return {}
            req.streams.append(writer)
            for event in req.pending:
                writer.write(event.encode())
            req.pending.clear()
            return None  # the connection now carries events only
        if op in ("press", "release_button", "drive", "bounce", "level"):
            line = self.line(msg["chip"], msg["line"])
            if op == "level":
                return {"level": line.level, "logical": line.logical, "info": self.line_info(line)}
            if op == "press":
                line.driven = 0 if line.settings.get("bias") == "pull_up" else 1
            elif op == "release_button":
                line.driven = None
            elif op == "drive":
                line.driven = int(msg["level"])
            else:  # bounce: the contact chatters, then rests at level
                # Back to back, without yielding to the loop: a busy test machine cannot stretch a
                # chatter past the debounce period, so what the hub sees depends on its settings only.
                for i in range(int(msg.get("edges", 6))):
                    self.set_level(line, 1 - line.level)
                line.driven = int(msg["level"])
            ts = self.set_level(line, line.resting_level())
            return {"timestamp_ns": ts, "level": line.level}
        raise ValueError(f"unknown op {op!r}")


async def serve(sim: Sim, host: str, port: int) -> asyncio.AbstractServer:
    async def client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        streaming = False
        try:
            while line := await reader.readline():
                if not line.strip():
                    continue
                try:
                    msg = json.loads(line)
                    if msg.get("op") == "release" and "request" not in msg:
                        msg["op"] = "release_button"  # the control CLI's "release" of a button
                    answer = await sim.control(msg, writer)
                    if answer is None:
                        streaming = True
                        continue
                    answer = {"ok": True, **answer}
                except Exception as exc:  # noqa: BLE001 - every bad request gets its answer
                    answer = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
                writer.write(json.dumps(answer).encode() + b"\n")
                await writer.drain()
        except ConnectionError:
            pass
        finally:
            if not streaming:
                # A request's owner going away releases its lines, as closing the fd does in the kernel.
                for req in list(sim.requests.values()):
                    if getattr(req, "owner", None) is writer:
                        sim.release(req)
            else:
                for req in sim.requests.values():
                    if writer in req.streams:
                        req.streams.remove(writer)
            writer.close()

    return await asyncio.start_server(client, host, port)


def parse_chip(text: str) -> Chip:
    """``gpiochip0=label:54`` or ``gpiochip0=label:GPIO0,GPIO1,...`` (line names)."""
    name, _, rest = text.partition("=")
    label, _, lines = rest.rpartition(":")
    names = [""] * int(lines) if lines.isdigit() else lines.split(",")
    return Chip(name, label or name, [Line(i, n) for i, n in enumerate(names)])


async def amain(args) -> None:
    sim = Sim([parse_chip(c) for c in args.chip])
    host, _, port = args.control.rpartition(":")
    server = await serve(sim, host, int(port))
    if args.dev_dir:
        for name in sim.chips:
            (Path(args.dev_dir) / name).touch()
    print("ready", flush=True)
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--control", required=True, help="HOST:PORT of the JSON-lines socket")
    parser.add_argument("--chip", action="append", required=True, help="NAME=LABEL:LINES")
    parser.add_argument("--dev-dir", help="a folder that gets an empty file per chip")
    try:
        asyncio.run(amain(parser.parse_args()))
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()

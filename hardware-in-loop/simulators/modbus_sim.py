#!/usr/bin/env python3
"""A Modbus line of simulated devices, served by pymodbus in its own process.

    python modbus_sim.py tcp --port 5020 --device 1=sdm120 --device 2=relay8
    python modbus_sim.py rtu --port /tmp/ttyDEV --baudrate 9600 --device 1=sdm120 --device 2=relay8

Kinds: sdm120, sdm630 (meters), relay4, relay8 (relay boards), generic (500 registers, for the
benchmark). Prints ``ready`` on stdout once it serves.

On RTU the replies are paced at the configured baud rate: a pty moves bytes as fast as the kernel can,
so without pacing a benchmark would measure the CPU, not the bus. A request is taken to have arrived
when its last character would have (its length in character times after its first byte), the device
stays silent for the mandatory 3.5 characters, and the reply leaves in small chunks at the line's
speed. Device ids that are not configured, or are muted, never answer: exactly what a missing device
on an RS-485 line does.

Muting, to simulate a device that stops answering while its neighbours go on: write the muted ids to
the ``--control`` file as JSON (``{"muted": [1]}``) and send SIGUSR1. Freezing the whole process
(SIGSTOP / SIGCONT) simulates a dead gateway.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import signal
import sys
from pathlib import Path

from pymodbus.framer import FramerType
from pymodbus.server import ModbusSerialServer, ModbusTcpServer
from pymodbus.server.requesthandler import ServerRequestHandler

sys.path.insert(0, str(Path(__file__).resolve().parent))
from modbus_models import KINDS  # noqa: E402

MUTED: set[int] = set()


class QuietHandler(ServerRequestHandler):
    """Drops requests for ids that are absent or muted instead of answering with an exception."""

    async def handle_request(self):
        pdu = self.last_pdu
        if pdu is not None and (pdu.dev_id in MUTED or pdu.dev_id not in self.server.context.devices):
            self.discard_request()
            return
        await super().handle_request()

    def discard_request(self) -> None:
        pass


class PacedHandler(QuietHandler):
    CHUNK = 4  # bytes per write: about 4 ms at 9,600 baud, finer than the event loop's timer

    def __init__(self, owner, *args, char_time: float) -> None:
        super().__init__(owner, *args)
        self.char_time = char_time
        self._rx_first: float | None = None
        self._rx_last = 0.0
        self._rx_bytes = 0
        self._line_free = 0.0

    def data_received(self, data: bytes) -> None:
        now = self.loop.time()
        # A silence longer than 3.5 characters ends a frame (Modbus over Serial Line 2.5.1.1).
        if self._rx_first is None or now - self._rx_last > 3.5 * self.char_time + 0.02:
            self._rx_first, self._rx_bytes = now, 0
        self._rx_last = now
        self._rx_bytes += len(data)
        super().data_received(data)

    def discard_request(self) -> None:
        self._rx_first = None

    def send(self, data: bytes, addr=None) -> None:
        if not self.transport:
            return
        now = self.loop.time()
        first = self._rx_first if self._rx_first is not None else now
        arrived = first + self._rx_bytes * self.char_time
        self._rx_first = None
        start = max(arrived + 3.5 * self.char_time, self._line_free, now)
        for i in range(0, len(data), self.CHUNK):
            chunk = data[i:i + self.CHUNK]
            self.loop.call_at(start + (i + len(chunk)) * self.char_time, self._write, chunk)
        self._line_free = start + len(data) * self.char_time

    def _write(self, chunk: bytes) -> None:
        if self.transport:
            self.transport.write(chunk)


class TcpServer(ModbusTcpServer):
    def callback_new_connection(self):
        return QuietHandler(self, self.trace_packet, self.trace_pdu, self.trace_connect)


class RtuServer(ModbusSerialServer):
    char_time = 0.0

    def callback_new_connection(self):
        if self.char_time:
            return PacedHandler(self, self.trace_packet, self.trace_pdu, self.trace_connect, char_time=self.char_time)
        return QuietHandler(self, self.trace_packet, self.trace_pdu, self.trace_connect)


def parse_device(text: str) -> tuple[int, str]:
    unit, _, kind = text.partition("=")
    if kind not in KINDS:
        raise argparse.ArgumentTypeError(f"kind must be one of {', '.join(KINDS)}")
    return int(unit), kind


def reload_control(path: Path | None) -> None:
    MUTED.clear()
    if path is not None and path.exists():
        MUTED.update(json.loads(path.read_text() or "{}").get("muted", []))
    print(f"muted {sorted(MUTED)}", flush=True)


async def serve(args) -> None:
    devices = [KINDS[kind](unit, args.speed) for unit, kind in args.device]
    if args.mode == "tcp":
        server = TcpServer(devices, address=(args.host, args.port))
    else:
        server = RtuServer(devices, framer=FramerType.RTU, port=args.port, baudrate=args.baudrate,
                           parity=args.parity, stopbits=args.stopbits, bytesize=8)
        if not args.no_pace:
            server.char_time = (1 + 8 + (args.parity != "N") + args.stopbits) / args.baudrate
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    loop.add_signal_handler(signal.SIGUSR1, reload_control, args.control)
    reload_control(args.control)
    await server.serve_forever(background=True)
    print("ready", flush=True)
    await stop.wait()
    await server.shutdown()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", choices=["tcp", "rtu"])
    parser.add_argument("--host", default="127.0.0.1", help="tcp: address to bind (loopback by default)")
    parser.add_argument("--port", required=True, help="tcp: port number; rtu: serial port path")
    parser.add_argument("--baudrate", type=int, default=9600)
    parser.add_argument("--parity", choices=["N", "E", "O"], default="N")
    parser.add_argument("--stopbits", type=int, choices=[1, 2], default=1)
    parser.add_argument("--no-pace", action="store_true", help="rtu: send replies as fast as the pty takes them")
    parser.add_argument("--device", type=parse_device, action="append", required=True, metavar="ID=KIND")
    parser.add_argument("--speed", type=float, default=1.0, help="simulated seconds per second (energy)")
    parser.add_argument("--control", type=Path, help="JSON file read on SIGUSR1: {\"muted\": [ids]}")
    args = parser.parse_args(argv)
    if args.mode == "tcp":
        args.port = int(args.port)
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("pymodbus").setLevel(logging.CRITICAL)
    asyncio.run(serve(args))


if __name__ == "__main__":
    main()

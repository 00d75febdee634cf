#!/usr/bin/env python3
"""A Modbus TCP device in its own process that reports every write it carries out.

    python write_counter_server.py --port 5020 --slow-writes 1 [--delay 1.5]

One device (id 1) with 10 coils and 40 holding registers. The first ``--slow-writes`` writes are
carried out at once but answered late, like a PLC busy with its scan, so a client gives up on a write
the device did perform: after ``--delay`` seconds, or without it when a ``release`` line arrives on
standard input (a test releases the answer once the client has given up, whatever the machine's
speed). Prints ``ready`` once it serves, ``write <function> <address> <values>`` for each write
carried out, and ``answered`` when a slow write's answer leaves.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import threading

from pymodbus.server import ModbusTcpServer
from pymodbus.server.requesthandler import ServerRequestHandler
from pymodbus.simulator import DataType, SimData, SimDevice

WRITES = {5, 6, 15, 16}
SLOW: dict = {"left": 0, "delay": None}
HELD: list = []  # answers waiting for a "release" line


class SlowWriteHandler(ServerRequestHandler):
    """Holds back the answer (not the write itself) of the first slow writes."""

    def send(self, data: bytes, addr=None) -> None:
        # A Modbus TCP frame: 7 bytes of MBAP header, then the function code.
        if len(data) > 7 and data[7] in WRITES and SLOW["left"]:
            SLOW["left"] -= 1
            if SLOW["delay"] is None:
                HELD.append((self, data, addr))
            else:
                self.loop.call_later(SLOW["delay"], self._late, data, addr)
            return
        super().send(data, addr)

    def _late(self, data: bytes, addr) -> None:
        print("answered", flush=True)
        if self.transport:
            super().send(data, addr)


class Server(ModbusTcpServer):
    def callback_new_connection(self):
        return SlowWriteHandler(self, self.trace_packet, self.trace_pdu, self.trace_connect)


def release_on_stdin(loop: asyncio.AbstractEventLoop) -> None:
    """Each ``release`` line sends every held answer (a thread: stdin may be a pipe or a terminal)."""
    for line in sys.stdin:
        if line.strip() == "release":
            loop.call_soon_threadsafe(release)


def release() -> None:
    while HELD:
        handler, data, addr = HELD.pop(0)
        handler._late(data, addr)


async def serve(port: int, slow: int, delay: float | None) -> None:
    SLOW.update(left=slow, delay=delay)
    threading.Thread(target=release_on_stdin, args=(asyncio.get_running_loop(),), daemon=True).start()

    async def action(function_code, start, address, count, registers, values):
        if function_code in WRITES and values is not None:  # also called, without values, to build the answer
            print(f"write {function_code} {address} {[int(v) for v in values]}", flush=True)
        return None

    device = SimDevice(1, ([SimData(0, count=10, values=0, datatype=DataType.BITS)],
                           [SimData(0, count=10, values=0, datatype=DataType.BITS)],
                           [SimData(0, count=40, values=0, datatype=DataType.REGISTERS)],
                           [SimData(0, count=40, values=0, datatype=DataType.REGISTERS)]), action=action)
    server = Server([device], address=("127.0.0.1", port))
    await server.serve_forever(background=True)
    print("ready", flush=True)
    await asyncio.Event().wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--slow-writes", type=int, default=0)
    parser.add_argument("--delay", type=float, help="seconds before a slow write's answer (default: on a release line)")
    args = parser.parse_args()
    logging.getLogger("pymodbus").setLevel(logging.CRITICAL if not __import__("os").environ.get("DEBUG") else logging.DEBUG)
    asyncio.run(serve(args.port, args.slow_writes, args.delay))


if __name__ == "__main__":
    main()

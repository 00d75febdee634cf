"""The emulators' control socket: one JSON object a line in, one JSON answer a line out.

Tests and benchmarks drive the virtual devices through it (join, leave, mute, set a sensor's value,
read a relay's state) while the radio library under test sees only the serial side. The operations
are :meth:`zigbee_devices.Network.control`'s; hardware-in-loop/README.md lists them.
"""

from __future__ import annotations

import asyncio
import inspect
import json


async def serve_control(network, host: str, port: int) -> asyncio.AbstractServer:
    """``network`` is anything with ``control(request) -> answer``; an awaitable answer (the fake
    BlueZ's, which may send for a while) is awaited before it is written."""

    async def client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while line := await reader.readline():
                if not line.strip():
                    continue
                try:
                    request = json.loads(line)
                    if not isinstance(request, dict):
                        raise ValueError("not an object")
                except ValueError as error:
                    answer = {"ok": False, "error": f"bad request line ({error}): want one JSON object"}
                else:
                    answer = network.control(request)
                    if inspect.isawaitable(answer):
                        answer = await answer
                writer.write(json.dumps(answer).encode() + b"\n")
                await writer.drain()
        except ConnectionError:
            pass
        finally:
            writer.close()

    return await asyncio.start_server(client, host, port)


def main(argv: list[str] | None = None) -> int:
    """``python zigbee_control.py HOST:PORT OP [FIELD=VALUE ...]``: one operation, its answer
    printed, so trying the emulator by hand needs no netcat. Values are JSON where they parse
    (``value=21.5``, ``value=true``), text otherwise (``device=plug1``)."""
    import os
    import socket
    import sys

    args = sys.argv[1:] if argv is None else argv
    if len(args) < 2 or ":" not in args[0]:
        script = os.path.basename(sys.argv[0])
        print(f"usage: {script} HOST:PORT OP [FIELD=VALUE ...]   e.g. 127.0.0.1:7720 get device=plug1",
              file=sys.stderr)
        return 2
    host, _, port = args[0].rpartition(":")
    request: dict = {"op": args[1]}
    for field in args[2:]:
        name, sep, text = field.partition("=")
        if not sep:
            print(f"{field!r}: want FIELD=VALUE", file=sys.stderr)
            return 2
        try:
            request[name] = json.loads(text)
        except ValueError:
            request[name] = text
    with socket.create_connection((host, int(port)), timeout=10) as conn:
        conn.sendall(json.dumps(request).encode() + b"\n")
        answer = conn.makefile().readline()
    print(answer.strip())
    return 0 if json.loads(answer or "{}").get("ok") else 1


if __name__ == "__main__":
    raise SystemExit(main())

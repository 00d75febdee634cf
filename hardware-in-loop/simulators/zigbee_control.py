"""The emulators' control socket: one JSON object a line in, one JSON answer a line out.

Tests and benchmarks drive the virtual devices through it (join, leave, mute, set a sensor's value,
read a relay's state) while the radio library under test sees only the serial side. The operations
are :meth:`zigbee_devices.Network.control`'s; hardware-in-loop/README.md lists them.
"""

from __future__ import annotations

import asyncio
import json

from zigbee_devices import Network


async def serve_control(network: Network, host: str, port: int) -> asyncio.AbstractServer:
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
                writer.write(json.dumps(answer).encode() + b"\n")
                await writer.drain()
        except ConnectionError:
            pass
        finally:
            writer.close()

    return await asyncio.start_server(client, host, port)

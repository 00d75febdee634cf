"""An emulated Silicon Labs Zigbee coordinator (EmberZNet 7.4, EZSP 13 over ASH) on a serial port.

bellows (the library the hub's ``radio_type: ezsp`` runs) talks to it exactly as to a ZBDongle-E or
SkyConnect: ASH framing, CRC, randomisation, acknowledgements and retransmission
(``ash_ncp.py``), EZSP commands and callbacks (``ezsp_ncp.py``). ``--state`` keeps the stick's
NVRAM (network parameters, keys, frame counter, joined devices) across restarts; without it the
stick is blank. The port may vanish (socat ended: the stick unplugged): the emulator waits for it
and goes on, as a stick re-enumerated by USB.

    python hardware-in-loop/simulators/ezsp_sim.py --port /tmp/ttyEZSP \\
        [--control 127.0.0.1:PORT] [--state /tmp/ezsp-state.json] [-v]

Prints ``ready`` once it serves.
"""

from __future__ import annotations

import argparse
import asyncio
import errno
import json
import logging
import os
import sys
import termios
import tty
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bellows.types as t  # noqa: E402

from ash_ncp import AshNcp  # noqa: E402
from ezsp_ncp import Ezsp  # noqa: E402

LOG = logging.getLogger("ezsp_sim")
DEFAULT_EUI64 = "00:0b:57:ff:fe:5a:0e:01"  # a Silicon Labs OUI, as a ZBDongle-E has


class Nvram:
    """The stick's non-volatile part, one JSON file (0600: it holds the network key)."""

    def __init__(self, path: Path | None, eui64: str = DEFAULT_EUI64) -> None:
        self.path = path
        self.eui64 = eui64  # the factory address
        self.restored_eui64: str | None = None  # one written by a host restoring a backup
        self.network: dict | None = None
        self.nwk_frame_counter = 0
        self.link_keys: dict[str, str] = {}
        self.devices: dict[str, dict] = {}  # the radio's record of joined devices, by name
        if path is not None and path.exists():
            data = json.loads(path.read_text())
            self.restored_eui64 = data.get("restored_eui64")
            self.network = data.get("network")
            self.nwk_frame_counter = data.get("nwk_frame_counter", 0)
            self.link_keys = data.get("link_keys", {})
            self.devices = data.get("devices", {})

    def save(self) -> None:
        if self.path is None:
            return
        data = {"restored_eui64": self.restored_eui64, "network": self.network, "link_keys": self.link_keys,
                "nwk_frame_counter": self.nwk_frame_counter, "devices": self.devices}
        tmp = self.path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(data, f, indent=1)
        os.replace(tmp, self.path)

    def form(self, parameters: t.EmberNetworkParameters,
             security: t.EmberInitialSecurityState) -> None:
        hashed = t.EmberInitialSecurityBitmask.TRUST_CENTER_USES_HASHED_LINK_KEY in security.bitmask
        self.network = {
            "pan_id": int(parameters.panId),
            "extended_pan_id": bytes(parameters.extendedPanId.serialize()).hex(),
            "channel": int(parameters.radioChannel),
            "tx_power": int(parameters.radioTxPower),
            "nwk_manager_id": int(parameters.nwkManagerId),
            "nwk_update_id": 0,  # EmberZNet ignores the requested one on formNetwork
            "channels": int(parameters.channels),
            "network_key": bytes(security.networkKey).hex(),
            "key_seq": int(security.networkKeySequenceNumber),
            "tc_link_key": bytes(security.preconfiguredKey).hex(),
            "hashed_tclk": hashed,
        }
        self.devices.clear()
        self.save()

    def leave(self) -> None:
        self.network = None
        self.devices.clear()
        self.link_keys.clear()
        self.save()

    def parameters(self) -> t.EmberNetworkParameters:
        n = self.network
        return t.EmberNetworkParameters(
            extendedPanId=t.ExtendedPanId.deserialize(bytes.fromhex(n["extended_pan_id"]))[0],
            panId=n["pan_id"], radioTxPower=n["tx_power"], radioChannel=n["channel"],
            joinMethod=t.EmberJoinMethod.USE_MAC_ASSOCIATION, nwkManagerId=n["nwk_manager_id"],
            nwkUpdateId=n["nwk_update_id"], channels=t.Channels(n["channels"]))


ZDO_PROFILE = 0x0000
# The coordinator's node descriptor: logical type coordinator, 2.4 GHz, mains, Silicon Labs (0x1049)
COORDINATOR_NODE_DESCRIPTOR = bytes.fromhex("00408f4910528000412c800000")


class Radio:
    """The coordinator's side of the air: its own ZDO, and the virtual devices behind it."""

    def __init__(self, nvram: Nvram) -> None:
        self.nvram = nvram
        self.stack: Ezsp | None = None
        self.permit_until = 0.0
        self.loop = asyncio.get_running_loop()

    # --- called by the NCP -------------------------------------------------------------------
    def stack_reset(self) -> None:
        self.permit_until = 0.0

    def network_started(self) -> None:
        pass

    def children(self) -> list[tuple[str, int, bool]]:
        return []

    def nwk_of(self, ieee: str) -> int | None:
        return None

    def ieee_of(self, nwk: int) -> str | None:
        return self.stack.eui64 if nwk == 0x0000 else None

    def permit(self, duration: int) -> None:
        self.permit_until = self.loop.time() + duration if duration else 0.0

    def permit_open(self) -> bool:
        return self.loop.time() < self.permit_until

    def remove(self, ieee: str) -> None:
        pass

    def unicast(self, nwk: int, aps, data: bytes):
        """Hands a frame to its destination; returns what happens on delivery, or None when
        nobody answers at that address (the NCP then reports the delivery failed)."""
        if nwk == 0x0000 and aps.profileId == ZDO_PROFILE:
            return lambda: self._own_zdo(aps.clusterId, data)
        return None

    def broadcast(self, nwk: int, aps, data: bytes) -> None:
        pass

    # --- the coordinator's own ZDO (zigpy interviews the coordinator too) --------------------
    def _own_zdo(self, cluster: int, data: bytes) -> None:
        tsn, body = data[:1], data[1:]
        nwk = (0).to_bytes(2, "little")
        if cluster == 0x0002:  # Node_Desc_req
            answer = b"\x00" + nwk + COORDINATOR_NODE_DESCRIPTOR
        elif cluster == 0x0005:  # Active_EP_req
            eps = sorted(self.stack.endpoints)
            answer = b"\x00" + nwk + bytes([len(eps), *eps])
        elif cluster == 0x0004 and body[2] in self.stack.endpoints:  # Simple_Desc_req
            ep = self.stack.endpoints[body[2]]
            # the request's two lists are length-less: the first one swallowed both
            both = [*ep["inputClusterList"], *ep["outputClusterList"]]
            ins, outs = both[:ep["inputClusterCount"]], both[ep["inputClusterCount"]:]
            desc = (bytes([body[2]]) + int(ep["profileId"]).to_bytes(2, "little")
                    + int(ep["deviceId"]).to_bytes(2, "little") + bytes([ep["deviceVersion"]])
                    + bytes([len(ins)]) + b"".join(c.to_bytes(2, "little") for c in ins)
                    + bytes([len(outs)]) + b"".join(c.to_bytes(2, "little") for c in outs))
            answer = b"\x00" + nwk + bytes([len(desc)]) + desc
        elif cluster == 0x0004:
            answer = b"\x82" + nwk + b"\x00"  # INVALID_EP
        else:
            return
        self.stack.incoming(0x0000, ZDO_PROFILE, cluster | 0x8000, 0, 0, tsn + answer)


class SerialPort:
    """The device end of the pty: raw, non-blocking, reopened when it comes back after a replug."""

    def __init__(self, path: str, on_data, on_open) -> None:
        self.path = path
        self.on_data = on_data
        self.on_open = on_open
        self.fd: int | None = None
        self.loop = asyncio.get_running_loop()

    async def run(self) -> None:
        while True:
            while not os.path.exists(self.path):
                await asyncio.sleep(0.1)
            try:
                self.fd = os.open(self.path, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
            except OSError:
                await asyncio.sleep(0.1)
                continue
            tty.setraw(self.fd, termios.TCSANOW)
            closed = self.loop.create_future()
            self.loop.add_reader(self.fd, self._readable, closed)
            self.on_open()
            LOG.info("serving %s", self.path)
            await closed
            self.loop.remove_reader(self.fd)
            os.close(self.fd)
            self.fd = None
            LOG.info("port %s gone; waiting for it to come back", self.path)
            while os.path.exists(self.path):  # socat removes its links when it ends
                await asyncio.sleep(0.1)

    def _readable(self, closed: asyncio.Future) -> None:
        try:
            data = os.read(self.fd, 4096)
        except BlockingIOError:
            return
        except OSError as exc:
            if not closed.done():
                closed.set_result(exc.errno)
            return
        if not data:
            if not closed.done():
                closed.set_result(0)
            return
        self.on_data(data)

    def write(self, data: bytes) -> None:
        if self.fd is None:
            return
        view = memoryview(data)
        while view:
            try:
                view = view[os.write(self.fd, view):]
            except BlockingIOError:
                continue
            except OSError as exc:
                if exc.errno in (errno.EIO, errno.EBADF):
                    return
                raise


class ControlServer:
    """One JSON object a line in, one JSON answer a line out (the spec's control protocol)."""

    def __init__(self, handler) -> None:
        self.handler = handler

    async def serve(self, host: str, port: int) -> asyncio.AbstractServer:
        return await asyncio.start_server(self._client, host, port)

    async def _client(self, reader, writer) -> None:
        try:
            while line := await reader.readline():
                try:
                    request = json.loads(line)
                    if not isinstance(request, dict) or "op" not in request:
                        raise ValueError("a request is a JSON object with an 'op'")
                    answer = await self.handler(request)
                except Exception as exc:  # noqa: BLE001  (every error becomes an answer)
                    answer = {"ok": False, "error": str(exc)}
                writer.write((json.dumps(answer) + "\n").encode())
                await writer.drain()
        finally:
            writer.close()


async def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--port", required=True, help="the pty (device end) to serve")
    parser.add_argument("--baudrate", type=int, default=115200, help="accepted, not paced")
    parser.add_argument("--control", help="HOST:PORT of the JSON-lines control socket")
    parser.add_argument("--state", type=Path, help="NVRAM file; without it a blank stick")
    parser.add_argument("--eui64", default=DEFAULT_EUI64, help="the stick's factory IEEE address")
    parser.add_argument("-v", "--verbose", action="count", default=0)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose > 1 else
                        logging.INFO if args.verbose else logging.WARNING,
                        format="%(asctime)s %(name)s %(message)s", stream=sys.stderr)

    nvram = Nvram(args.state, args.eui64)
    radio = Radio(nvram)
    stack = Ezsp(nvram, radio)
    radio.stack = stack
    port = SerialPort(args.port, lambda data: link.feed(data), lambda: link.unplugged())
    link = AshNcp(stack, port.write)
    stack.ash = link

    async def control(request: dict) -> dict:
        op = request["op"]
        if op == "stats":
            return {"ok": True, **link.stats, "network_up": stack.network_up}
        if op == "corrupt":  # the next N DATA frames leave with a bad CRC (retransmission test)
            link.corrupt_next = int(request.get("count", 1))
            return {"ok": True}
        raise ValueError(f"unknown op {op!r}")

    server = None
    if args.control:
        host, _, cport = args.control.rpartition(":")
        server = await ControlServer(control).serve(host or "127.0.0.1", int(cport))
    serving = asyncio.create_task(port.run())
    while port.fd is None:
        await asyncio.sleep(0.01)
    print("ready", flush=True)
    try:
        await serving
    finally:
        if server is not None:
            server.close()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass

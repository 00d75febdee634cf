"""An emulated Silicon Labs Zigbee coordinator (EmberZNet 7.4, EZSP 13 over ASH) on a serial port.

bellows (the library the hub's ``radio_type: ezsp`` runs) talks to it exactly as to a ZBDongle-E or
SkyConnect: ASH framing, CRC, randomisation, acknowledgements and retransmission
(``ash_ncp.py``), EZSP commands and callbacks (``ezsp_ncp.py``). ``--state`` keeps the stick's
NVRAM (network parameters, keys, frame counter, joined devices) across restarts; without it the
stick is blank. The port may vanish (socat ended: the stick unplugged): the emulator waits for it
and goes on, as a stick re-enumerated by USB.

    python hardware-in-loop/simulators/ezsp_sim.py --port /tmp/ttyEZSP \\
        [--control 127.0.0.1:PORT] [--state /tmp/ezsp-state.json] [--eui64 EUI64] \\
        [--device plug1=plug --device light1=light ...] [--fleet 200=motion] [-v]

Prints ``ready`` once it serves.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from pathlib import Path
from types import SimpleNamespace

sys.path.insert(0, str(Path(__file__).resolve().parent))

import zigpy.types as zigpy_types  # noqa: E402

from ash_ncp import AshNcp  # noqa: E402
from ezsp_ncp import Ezsp  # noqa: E402
from ezsp_nvram import DEFAULT_EUI64, Nvram  # noqa: E402
from pty_port import PtyPort  # noqa: E402
from zigbee_control import serve_control  # noqa: E402
from zigbee_devices import KINDS, Network  # noqa: E402

LOG = logging.getLogger("ezsp_sim")


ZDO_PROFILE = 0x0000
DEVICE_ANNCE, MGMT_PERMIT_JOINING_REQ = 0x0013, 0x0036
# The coordinator's node descriptor: logical type coordinator, 2.4 GHz, mains, Silicon Labs (0x1049)
COORDINATOR_NODE_DESCRIPTOR = bytes.fromhex("00408f4910528000412c800000")


class Radio:
    """The coordinator's side of the air: its own ZDO, and zsim's virtual devices behind it
    (this class is the EZSP side of :class:`zigbee_devices.Radio`)."""

    def __init__(self, network: Network, nvram: Nvram) -> None:
        self.network = network
        self.nvram = nvram
        self.stack: Ezsp | None = None
        network.radio = self

    # --- called by the NCP -------------------------------------------------------------------
    def stack_reset(self) -> None:
        self.network.permit(0)

    def network_started(self) -> None:
        pass

    def children(self) -> list[tuple[str, int, bool]]:
        return [(d.ieee_str, d.nwk, True) for d in self.network.devices.values()
                if d.joined and not d.is_router]

    def nwk_of(self, ieee: str) -> int | None:
        device = self.network.by_ieee(zigpy_types.EUI64.convert(ieee))
        return device.nwk if device is not None and device.joined else None

    def ieee_of(self, nwk: int) -> str | None:
        if nwk == 0x0000:
            return self.stack.eui64
        device = self.network.by_nwk.get(nwk)
        return device.ieee_str if device is not None and device.joined else None

    def permit(self, duration: int) -> None:
        self.network.permit(min(duration, 254))

    def remove(self, ieee: str) -> None:
        device = self.network.by_ieee(zigpy_types.EUI64.convert(ieee))
        if device is not None:
            self.network.leave(device, requested=True)

    def unicast(self, nwk: int, aps, data: bytes) -> bool:
        """Hands a frame to its destination; False when nobody acknowledges it (absent, muted)."""
        if nwk == 0x0000:
            if aps.profileId == ZDO_PROFILE:
                self.network.loop.call_soon(self._own_zdo, aps.clusterId, data)
            return True
        return self.network.unicast(nwk, aps.sourceEndpoint, aps.destinationEndpoint, aps.clusterId,
                                    aps.profileId, data)

    def broadcast(self, nwk: int, aps, data: bytes) -> None:
        if aps.profileId == ZDO_PROFILE and aps.clusterId == MGMT_PERMIT_JOINING_REQ and len(data) >= 2:
            self.permit(data[1])  # the routers (and the coordinator) open as the request says

    # --- from the devices (zigbee_devices.Radio) -----------------------------------------------
    def device_joined(self, device, rejoin: bool) -> None:
        if self.stack is None or not self.stack.network_up:
            return
        self.stack.joined(device.nwk, device.ieee_str, rejoin=rejoin)
        capability = 0x8E if device.is_router else 0x80
        announce = (bytes([device.next_tsn()]) + device.nwk.to_bytes(2, "little")
                    + device.ieee.serialize() + bytes([capability]))
        self.network.loop.call_later(0.02, lambda: self.stack.incoming(
            device.nwk, ZDO_PROFILE, DEVICE_ANNCE, 0, 0, announce, broadcast=True))

    def device_left(self, device) -> None:
        if self.stack is not None and self.stack.network_up:
            self.stack.left(device.nwk, device.ieee_str)

    def zdo_from_device(self, device, cluster: int, data: bytes) -> None:
        self.stack.incoming(device.nwk, ZDO_PROFILE, cluster, 0, 0, data, lqi=self._lqi(device))

    def aps_from_device(self, device, src_ep: int, dst_ep: int, cluster: int, profile: int,
                        data: bytes) -> None:
        # Delivered whatever the endpoint: bellows forms a network across NCP resets and does not
        # add its endpoints again, and real sticks still pass the devices' answers up.
        self.stack.incoming(device.nwk, profile, cluster, src_ep, dst_ep, data, lqi=self._lqi(device))

    def permit_changed(self, seconds: int) -> None:
        pass

    @staticmethod
    def _lqi(device) -> int:
        return 200 + device.nwk % 50

    # --- the coordinator's own ZDO (zigpy interviews the coordinator too) --------------------
    def _own_zdo(self, cluster: int, data: bytes) -> None:
        tsn, body = data[:1], data[1:]
        nwk = (0).to_bytes(2, "little")
        if cluster == 0x0002:  # Node_Desc_req
            answer = b"\x00" + nwk + COORDINATOR_NODE_DESCRIPTOR
        elif cluster == 0x0005:  # Active_EP_req
            eps = sorted(self.stack.endpoints)
            answer = b"\x00" + nwk + bytes([len(eps), *eps])
        elif cluster == 0x0004 and len(body) >= 3 and body[2] in self.stack.endpoints:
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
            answer = b"\x83" + nwk + b"\x00"  # NOT_ACTIVE
        elif cluster == 0x0001:  # IEEE_addr_req
            answer = b"\x00" + zigpy_types.EUI64.convert(self.stack.eui64).serialize() + nwk
        else:
            return
        self.stack.incoming(0x0000, ZDO_PROFILE, cluster | 0x8000, 0, 0, tsn + answer)


def device_arg(text: str) -> tuple[str, str]:
    name, sep, kind = text.partition("=")
    if not sep or not name or kind not in KINDS:
        raise argparse.ArgumentTypeError(
            f"--device wants NAME=KIND (kinds: {', '.join(KINDS)}), got {text!r}")
    return name, kind


def fleet_arg(text: str) -> tuple[int, str]:
    count, sep, kind = text.partition("=")
    if not sep or not count.isdigit() or kind not in KINDS:
        raise argparse.ArgumentTypeError(
            f"--fleet wants COUNT=KIND (kinds: {', '.join(KINDS)}), got {text!r}")
    return int(count), kind


def control_arg(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit():
        raise argparse.ArgumentTypeError(f"--control wants HOST:PORT, got {text!r}")
    return host or "127.0.0.1", int(port)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--port", required=True, help="the pty (socat's device end) to serve")
    parser.add_argument("--baudrate", type=int, default=115200,
                        help="pace of outgoing bytes; 0 for no pacing")
    parser.add_argument("--control", type=control_arg, help="HOST:PORT of the JSON-lines control socket")
    parser.add_argument("--state", type=Path, help="NVRAM file; without it a blank stick")
    parser.add_argument("--eui64", default=DEFAULT_EUI64, help="the stick's factory IEEE address")
    parser.add_argument("--device", type=device_arg, action="append", default=[], metavar="NAME=KIND")
    parser.add_argument("--fleet", type=fleet_arg, action="append", default=[], metavar="COUNT=KIND")
    parser.add_argument("--fleet-period", type=float, default=1.0,
                        help="seconds between a fleet device's reports")
    parser.add_argument("-v", "--verbose", action="count", default=0)
    return parser.parse_args(argv)


async def main(args: argparse.Namespace) -> None:
    logging.basicConfig(level=logging.DEBUG if args.verbose > 1 else
                        logging.INFO if args.verbose else logging.WARNING,
                        format="%(asctime)s %(name)s %(message)s", stream=sys.stderr)
    loop = asyncio.get_running_loop()
    nvram = Nvram(args.state, args.eui64)
    network = Network(loop, on_change=nvram.schedule)
    for name, kind in args.device:
        network.add(name, kind)
    for count, kind in args.fleet:
        network.add_fleet(count, kind, args.fleet_period)
    network.restore(nvram.devices)
    nvram.air = network
    radio = Radio(network, nvram)
    stack = Ezsp(nvram, radio)
    radio.stack = stack
    port = PtyPort(args.port, args.baudrate, lambda data: link.feed(data),
                   lambda first: link.unplugged(), lambda: link.unplugged())
    link = AshNcp(stack, port.write)
    stack.ash = link

    def control(request: dict) -> dict:
        op = request.get("op")
        if op in ("corrupt", "reject"):  # line noise, to see both ends retransmit: the next N
            count = request.get("count", 1)  # DATA frames out (corrupt) or in (reject) are broken
            if not isinstance(count, int) or not 0 <= count <= 100:
                return {"ok": False, "error": f"count wants an integer 0-100, got {count!r}"}
            setattr(link, f"{op}_next", count)
            return {"ok": True}
        answer = network.control(request)
        if op == "stats" and answer.get("ok"):
            answer.update(ash={**link.stats, "queued": link.queue.qsize()},
                          network_up=stack.network_up)
        return answer

    network.start()
    # zsim's control socket, with the link's own ops and counters added to the devices' ones
    server = await serve_control(SimpleNamespace(control=control), *args.control) \
        if args.control else None
    serving = loop.create_task(port.run())
    while port.fd is None:
        await asyncio.sleep(0.01)
    stop = loop.create_future()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, lambda: stop.done() or stop.set_result(None))
    print("ready", flush=True)
    await stop
    serving.cancel()
    if server is not None:
        server.close()
    nvram.save()


if __name__ == "__main__":
    asyncio.run(main(parse_args(sys.argv[1:])))

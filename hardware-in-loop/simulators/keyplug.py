"""A smart plug that holds its own key: the whitepaper's light node, as an ESP32 plug would be.

It keeps everything an ESP32 would keep in flash in one file (``--flash``, 0600, written atomically
and fsync'd before it answers): its Ed25519 seed, the setup code of a strong label, the network it
was bound on, its relay and energy meter, and its light-node record (controller, grants, revocation
epoch, the highest counter accepted from each signer). It verifies every statement itself with
:class:`hub.identity.lightnode.LightNode`, the same code the hub runs for keyless devices, so a hub
only forwards: a refusal comes from the plug, with its reason.

It speaks :mod:`hub_lightnode.protocol` over TCP to at most four hubs at once. SIGUSR1 is its reset
button: controller and grants are cleared (counters are kept, so an old command still cannot be
replayed), a strong label's setup code works again, and every connected hub is told, with the
device-signed ``Reset``. Its seed never leaves the process: not on stdout, not over the wire.

    python hardware-in-loop/simulators/keyplug.py --flash /tmp/plug.json --port 7700 --label-out /tmp
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
import time
from pathlib import Path
from typing import Any

from hub.crypto import keys
from hub.crypto.signing import Network
from hub.crypto.statements import (Bind, BindProof, Command, Grant, Handover, Receipt, Reset, Revoke, Signed,
                                   StatementError, sign)
from hub.identity import labels
from hub.identity.errors import Reason, Refused
from hub.identity.lightnode import JsonFlash, LightNode

from hub_lightnode import protocol

MODEL = "keyplug"
FLASH_VERSION = 1
POWER_W = 1500.0  # what the plug draws while its relay is on
MAX_HUBS = 4
IDLE_TIMEOUT = 60.0  # a hub that says nothing (not even a ping) for this long is dropped
WRONG_CODE_PAUSE = 0.5  # each wrong setup code costs this long: guessing 50 bits is not an option
ENTITIES = [
    {"key": "relay", "capability": "switch", "unit": None, "device_class": "outlet"},
    {"key": "power", "capability": "sensor", "unit": "W", "device_class": "power"},
    {"key": "energy", "capability": "meter", "unit": "kWh", "device_class": "energy"},
]
RELAY_COMMANDS = {"turn_on", "turn_off", "toggle"}


class FlashError(Exception):
    """The flash file cannot be this plug's: the message names the file and what is wrong."""


def now_ms() -> int:
    return int(time.time() * 1000)


class NodeFlash:
    """The light node's part of the flash file: what ``LightNode`` loads and saves."""

    def __init__(self, plug: "Plug") -> None:
        self.plug = plug

    def load(self) -> dict | None:
        return self.plug.flash_data.get("node")

    def save(self, record: dict) -> None:
        self.plug.flash_data["node"] = record
        self.plug.save()


class Plug:
    def __init__(self, flash_path: Path, *, strong: bool, window_s: float, label_out: Path | None) -> None:
        self.flash = JsonFlash(flash_path, section=None)
        self.window_ms = int(window_s * 1000)
        try:
            self.flash_data: dict[str, Any] = self.flash.load() or {}
        except ValueError as exc:  # not JSON, or not an object
            raise FlashError(f"{flash_path}: damaged flash: {exc}") from None
        if not self.flash_data:
            self._manufacture(strong, label_out)
        elif self.flash_data.get("version") != FLASH_VERSION:
            raise FlashError(f"{flash_path}: flash version {self.flash_data.get('version')!r}, "
                             f"this firmware reads {FLASH_VERSION}")
        elif strong and not self.flash_data.get("setup_code"):
            print("this plug was made with a whitepaper label: --strong applies on first start only", flush=True)
        try:
            self.key = keys.PrivateKey(bytes.fromhex(self.flash_data["seed"]))
        except (KeyError, TypeError, ValueError):
            raise FlashError(f"{flash_path}: damaged flash: no valid seed") from None
        self.public_key = self.key.public_key
        self.clients: set[asyncio.StreamWriter] = set()
        self.code_lock = asyncio.Lock()
        self._ticked = time.monotonic()
        self._node: LightNode | None = None

    # --- flash -------------------------------------------------------------------------------------
    def _manufacture(self, strong: bool, label_out: Path | None) -> None:
        label, text = labels.make(strong=strong)
        self.flash_data = {"version": FLASH_VERSION, "seed": label.seed.hex(), "setup_code": label.setup_code,
                           "code_open": label.strong, "network": None, "relay": False, "energy_kwh": 0.0}
        self.save()
        if label_out is not None:  # what the manufacturer prints on the plug: text and QR code
            label_out.mkdir(parents=True, exist_ok=True)
            name = f"keyplug-{label.public_key.hex()[:16]}-label"
            labels.write_private(label_out / f"{name}.txt", text + "\n")
            labels.write_png(text, label_out / f"{name}.png")

    def save(self) -> None:
        self.flash.save(self.flash_data)

    @property
    def network(self) -> Network | None:
        net = self.flash_data.get("network")
        return Network(net[0], bytes.fromhex(net[1])) if net else None

    def node(self, network: Network) -> LightNode:
        if self._node is None or self._node.network != network:
            self._node = LightNode(self.public_key, network, NodeFlash(self), window_ms=self.window_ms)
        return self._node

    # --- what a hub asks -------------------------------------------------------------------------
    def deliver(self, message: dict) -> Any:
        offered = Network(message["chain"], message["genesis"])
        bound_on = self.network
        if bound_on is not None and offered != bound_on:
            raise Refused(Reason.WRONG_CHAIN, f"this device is bound on {bound_on.chain_id} "
                                              f"({bound_on.genesis_hash.hex()[:16]}...)")
        try:
            signed = Signed.from_body(message["signed"])
        except StatementError as exc:
            raise Refused(Reason.MALFORMED, str(exc)) from None
        statement = signed.statement
        if statement.device != self.public_key:
            raise Refused(Reason.WRONG_DEVICE, f"addressed to {statement.device.hex()[:16]}..., "
                                               f"this is {self.public_key.hex()[:16]}...")
        if isinstance(statement, (Bind, BindProof)):
            self.node(bound_on or offered).bind(signed)
            self._bound(bound_on or offered)
            return {"controller": statement.controller.hex()}
        if isinstance(statement, Reset):  # the label's key (whitepaper mode) may reset as well
            if bound_on is None:
                raise Refused(Reason.UNBOUND, "this device has no controller to reset")
            if not signed.verify(self.public_key, bound_on):
                raise Refused(Reason.FORGED, "a reset must be signed with this device's key")
            self._reset(bound_on, statement.time)
            return {"reset": True}
        if bound_on is None:
            raise Refused(Reason.UNBOUND, "this device has no controller yet")
        node = self.node(bound_on)
        if isinstance(statement, Command):
            return self._command(node, signed)
        if isinstance(statement, Handover):
            node.handover(signed)
            return {"controller": statement.to.hex()}
        if isinstance(statement, Grant):
            node.grant(signed, now_ms())
            return {"grantee": statement.grantee.hex()}
        if isinstance(statement, Revoke):
            node.revoke(signed)
            return {"epoch": statement.epoch}
        raise Refused(Reason.MALFORMED, f"a {statement.DOMAIN} is settled on chain, not by the device")

    def receipt(self, message: dict) -> Any:
        """A rental's meter receipt, signed with this device's own key: the energy its meter holds
        (Wh), or for ``"time"`` the ms since the call's ``since``. Only for a call this device holds
        a grant for (``ref`` "call:<hex>"), so a hub cannot make it vouch for someone else's rental."""
        bound_on = self.network
        if bound_on is None:
            raise Refused(Reason.UNBOUND, "this device has no controller yet")
        if Network(message["chain"], message["genesis"]) != bound_on:
            raise Refused(Reason.WRONG_CHAIN, f"this device is bound on {bound_on.chain_id}")
        ref = f"call:{message['call'].hex()}"
        if not any(g.statement.ref == ref for g in self.node(bound_on).grants()):
            raise Refused(Reason.NOT_GRANTED, f"no grant of this device is for call {message['call'].hex()[:16]}...")
        now = now_ms()
        entity = message["entity"]
        if entity == "energy":
            self._tick()
            reading = int(round(self.flash_data["energy_kwh"] * 1_000_000)) // 1000  # Wh, rounded down
        elif entity == "time":
            reading = max(0, now - message["since"])
        else:
            raise Refused(Reason.MALFORMED, f"{entity}: this plug meters energy or time")
        statement = Receipt(bound_on.chain_id, self.public_key, message["call"], entity, reading, now, self.public_key)
        return sign(statement, self.key, bound_on).to_body()

    def _command(self, node: LightNode, signed: Signed) -> Any:
        command: Command = signed.statement  # type: ignore[assignment]
        # Checked before the light node, so a command the plug cannot do spends no counter.
        if command.entity != "relay" or command.command not in RELAY_COMMANDS:
            raise Refused(Reason.MALFORMED, f"{command.entity}.{command.command}: this plug only has "
                                            f"relay.{', relay.'.join(sorted(RELAY_COMMANDS))}")
        if command.args:
            raise Refused(Reason.MALFORMED, f"relay.{command.command} takes no arguments")
        node.check(signed, now_ms())  # raises Refused; on success the counter is in flash already
        self._tick()  # the energy drawn so far is counted at the old power
        on = {"turn_on": True, "turn_off": False, "toggle": not self.flash_data["relay"]}[command.command]
        self.flash_data["relay"] = on
        self.save()
        self.broadcast_states()
        return {"relay": "on" if on else "off"}

    async def prove(self, message: dict) -> Any:
        """Strong binding: check the label's setup code, then sign a ``BindProof`` with the key that
        never leaves this device."""
        code = self.flash_data.get("setup_code")
        if not code:
            raise Refused(Reason.BAD_SETUP_CODE, "this device has a whitepaper label (no setup code)")
        async with self.code_lock:  # one guess at a time, each wrong one paid for
            if not self.flash_data.get("code_open"):  # checked here: two right guesses bind once
                raise Refused(Reason.ALREADY_BOUND, "the setup code was used; press the reset button first")
            if not labels.check_code_mac(code, message["controller"], message["nonce"], message["code_mac"]):
                await asyncio.sleep(WRONG_CODE_PAUSE)
                raise Refused(Reason.BAD_SETUP_CODE, "the setup code does not match this device's label")
            network = Network(message["chain"], message["genesis"])
            proof = sign(BindProof(self.public_key, message["controller"], message["nonce"], now_ms()),
                         self.key, network)
            self.node(network).bind(proof)
            self._bound(network)
            return proof.to_body()

    def _bound(self, network: Network) -> None:
        self.flash_data["network"] = [network.chain_id, network.genesis_hash.hex()]
        self.flash_data["code_open"] = False
        self.save()

    # --- the reset button --------------------------------------------------------------------------
    def press_reset(self) -> None:
        network = self.network
        signed = None
        if network is not None:
            signed = sign(Reset(self.public_key, now_ms()), self.key, network)
            self._reset(network, signed.statement.time)
        else:
            self.flash_data["code_open"] = bool(self.flash_data.get("setup_code"))
            self.save()
        print(f"reset pressed ({'was bound' if signed else 'was not bound'})", flush=True)
        self.broadcast({"t": "reset", "statement": signed.to_body() if signed else None})

    def _reset(self, network: Network, time_ms: int) -> None:
        self.node(network).reset(time_ms)
        self.flash_data["network"] = None
        self.flash_data["code_open"] = bool(self.flash_data.get("setup_code"))
        self.save()

    # --- the plug's own physics --------------------------------------------------------------------
    def _tick(self) -> None:
        now = time.monotonic()
        elapsed, self._ticked = now - self._ticked, now
        if self.flash_data["relay"]:
            self.flash_data["energy_kwh"] += POWER_W * elapsed / 3_600_000

    def states(self) -> list[dict]:
        on = self.flash_data["relay"]
        return [{"t": "state", "entity": "relay", "value": "on" if on else "off"},
                {"t": "state", "entity": "power", "value": POWER_W if on else 0.0},
                {"t": "state", "entity": "energy", "value": round(self.flash_data["energy_kwh"], 6)}]

    def broadcast_states(self) -> None:
        for message in self.states():
            self.broadcast(message)

    def broadcast(self, message: dict) -> None:
        frame = protocol.pack(message)
        for writer in list(self.clients):
            if writer.transport.get_write_buffer_size() > 256 * 1024:  # a hub that stopped reading
                writer.close()
                self.clients.discard(writer)
                continue
            writer.write(frame)

    async def meter(self, tick: float) -> None:
        """Each tick while on, the energy drawn is counted, saved, then shown: a hub never sees a
        reading the flash does not hold, so a kill -9 cannot make the meter run backwards."""
        while True:
            await asyncio.sleep(tick)
            self._tick()
            if self.flash_data["relay"]:
                self.save()
                self.broadcast(self.states()[2])

    # --- connections -------------------------------------------------------------------------------
    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if len(self.clients) >= MAX_HUBS:
            writer.write(protocol.pack({"t": "busy", "message": f"{MAX_HUBS} hubs are connected already"}))
            await _close(writer)
            return
        self.clients.add(writer)
        try:
            await protocol.write_frame(writer, {"t": "hello", "v": protocol.VERSION, "device": self.public_key,
                                                "model": MODEL, "entities": ENTITIES, "flash": FLASH_VERSION})
            for message in self.states():
                writer.write(protocol.pack(message))
            while True:
                message = await protocol.read_frame(reader, IDLE_TIMEOUT)
                await protocol.write_frame(writer, await self.answer(message))
        except (asyncio.IncompleteReadError, ConnectionError, TimeoutError):
            pass
        except protocol.ProtocolError as exc:
            print(f"a hub broke the protocol: {exc}", flush=True)
        finally:
            self.clients.discard(writer)
            await _close(writer)

    async def answer(self, message: dict) -> dict:
        kind, request_id = message["t"], message.get("id")
        if kind not in ("deliver", "prove", "ping", "auth", "receipt"):
            raise protocol.ProtocolError(f"{kind}: not a request a hub may send")
        try:
            if kind == "ping":
                result: Any = "pong"
            elif kind == "auth":  # the hub's check that this device holds the key its hello claims
                result = self.key.sign(protocol.auth_bytes(message["nonce"], self.public_key))
            elif kind == "deliver":
                result = self.deliver(message)
            elif kind == "receipt":
                result = self.receipt(message)
            else:
                result = await self.prove(message)
        except Refused as exc:
            print(f"refused {kind}: {exc.reason.value}", flush=True)
            return protocol.answer_refused(request_id, exc.reason.value, exc.message)
        return protocol.answer_ok(request_id, result)


async def _close(writer: asyncio.StreamWriter) -> None:
    writer.close()
    try:
        await writer.wait_closed()
    except (ConnectionError, OSError):
        pass


async def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--flash", type=Path, required=True, help="the device's flash: a JSON file, made on first start")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--strong", action="store_true",
                        help="on first start, make a strong label (public key and setup code) instead of a printed seed")
    parser.add_argument("--window", type=float, default=30.0, help="seconds a command's issued_at may differ from now")
    parser.add_argument("--label-out", type=Path, help="on first start, write the label (text and QR code PNG) into this folder")
    parser.add_argument("--tick", type=float, default=1.0, help="seconds between energy readings")
    args = parser.parse_args(argv)

    try:
        plug = Plug(args.flash, strong=args.strong, window_s=args.window, label_out=args.label_out)
    except FlashError as exc:
        sys.exit(f"keyplug: {exc}")
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGUSR1, plug.press_reset)
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    server = await asyncio.start_server(plug.serve, args.host, args.port)
    meter = asyncio.create_task(plug.meter(args.tick))
    print(f"device {plug.public_key.hex()}", flush=True)
    print("ready", flush=True)
    async with server:
        await stop.wait()
    meter.cancel()
    plug._tick()
    plug.save()


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))

"""Test plugin: a device that holds its own key and verifies for itself, in-process (the keyplug
simulator is the real one, over TCP). It runs the same LightNode on a JsonFlash in the plugin's
data directory, so the gate's routing is tested against a real verifier: owner commands must
arrive signed, refusals come back with the device's reason, and hub_handle_command is never used."""

from __future__ import annotations

from hub import hookimpl
from hub.crypto.keys import PrivateKey
from hub.crypto.statements import Command
from hub.devices.model import Device, EntitySpec
from hub.identity.lightnode import JsonFlash, LightNode

KEY = PrivateKey(b"\x61" * 32)


def _node(hub) -> LightNode:
    if "node" not in hub.data:
        hub.data["node"] = LightNode(KEY.public_key, hub.service("identity").network, JsonFlash(hub.data_dir / "flash.json"))
    return hub.data["node"]


@hookimpl
def hub_discover(hub) -> None:
    device = Device(id="fakeplug", name="Fake plug", public_key=KEY.public_key.hex(), holds_key=True)
    hub.data["handles"] = hub.add_device(device, [EntitySpec(key="relay", capability="switch")])
    hub.data["handles"]["relay"].set("off")


@hookimpl
def hub_deliver_statement(hub, device_id, signed):
    if device_id != "fakeplug":
        return None
    st = signed.statement
    if isinstance(st, Command):
        _node(hub).check(signed, int(hub.now() * 1000))
        hub.data["handles"][st.entity].set("on" if st.command == "turn_on" else "off")
        return {"by": st.signer.hex()[:16]}
    getattr(_node(hub), {"bind": "bind", "handover": "handover", "grant": "grant", "revoke": "revoke"}[st.DOMAIN])(signed)
    return None


@hookimpl
def hub_handle_command(hub, entity, command, args):
    raise RuntimeError("the gate must deliver to a device that holds its key, not call its driver")

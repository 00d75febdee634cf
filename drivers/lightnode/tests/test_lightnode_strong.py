"""Strong binding through the driver's ``hub_request_bind_proof``, in a hub running in this process,
against the keyplug in its own: the device checks the label's setup code and signs the proof with
the key that never leaves it; the hub checks the proof before anyone records it."""

from __future__ import annotations

import asyncio
import hmac
import os

import pytest

import hub_lightnode
from hub.crypto.statements import BindProof
from hub.identity.errors import Refused
from hub.runtime import Hub

from keyplug_proc import KeyPlug


@pytest.fixture
def strong_plug(tmp_path):
    device = KeyPlug(tmp_path, "--strong").start()
    yield device
    device.stop()


@pytest.fixture
async def hub(tmp_path, strong_plug):
    data = tmp_path / "hub"
    data.mkdir()
    (data / "configuration.yaml").write_text(
        f"chain: {{}}\nlightnode:\n  devices:\n    - {{host: 127.0.0.1, port: {strong_plug.port}, name: Plug}}\n")
    hub = Hub(data, entrypoints=False)
    hub.plugins.register("lightnode", hub_lightnode)
    await hub.start()
    yield hub
    await hub.stop()


async def ask_proof(hub: Hub, device_id: str, controller: bytes, nonce: bytes, code: str):
    mac = hmac.new(code.encode(), controller + nonce, "sha256").digest()
    return await hub.plugins.call_one("lightnode", "hub_request_bind_proof", hub=hub.contexts["lightnode"],
                                      device_id=device_id, controller=controller, nonce=nonce, code_mac=mac)


async def test_the_device_proves_its_key_for_the_right_setup_code_only(hub, strong_plug):
    device_id = strong_plug.public_key.hex()  # the driver's own id, as the gate passes it
    assert await eventually(lambda: hub.contexts["lightnode"].data["devices"].owns(device_id)), "no hello"
    identity = hub.services["identity"]
    controller, nonce = identity.controller_key.public_key, os.urandom(32)

    with pytest.raises(Refused) as refused:
        await ask_proof(hub, device_id, controller, nonce, "WRONGCODE0")
    assert refused.value.reason == "bad_setup_code"

    proof = await ask_proof(hub, device_id, controller, nonce, strong_plug.setup_code())
    assert isinstance(proof.statement, BindProof) and proof.statement.controller == controller
    assert proof.verify(strong_plug.public_key, identity.network)
    # The device is now bound to the hub's controller key: the owner's commands run.
    await hub.commands.call("switch.plug_relay", "turn_on")
    assert await eventually(lambda: hub.states.get("switch.plug_relay").value == "on")
    # And the code is spent: a second binder with the same label gets nowhere.
    with pytest.raises(Refused) as again:
        await ask_proof(hub, device_id, os.urandom(32), os.urandom(32), strong_plug.setup_code())
    assert again.value.reason == "already_bound"


async def eventually(condition, timeout: float = 10) -> bool:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        if loop.time() > deadline:
            return False
        await asyncio.sleep(0.02)
    return True

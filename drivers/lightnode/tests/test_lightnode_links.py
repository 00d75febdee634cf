"""Links that must not be believed, in a hub running in this process: a peer whose hello claims a
key it does not hold is not taken for that device (the hub checks the claim, ``auth``, before it
registers anything), and a device that is not connected is never reported as having been told."""

from __future__ import annotations

import asyncio

import pytest

import hub_lightnode
from hub.crypto import keys
from hub.runtime import Hub

from hub_lightnode import protocol

VICTIM = keys.PrivateKey.generate().public_key  # a real plug's public key, which anyone can read


async def impostor(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await protocol.write_frame(writer, {"t": "hello", "v": 1, "device": VICTIM, "model": "keyplug", "flash": 1,
                                        "entities": [{"key": "relay", "capability": "switch", "unit": None,
                                                      "device_class": "outlet"}]})
    await protocol.write_frame(writer, {"t": "state", "entity": "relay", "value": "on"})
    try:
        while True:
            message = await protocol.read_frame(reader, 10)
            # Its own key's signature: the best it can do without the victim's key.
            fake = keys.PrivateKey.generate().sign(protocol.auth_bytes(message.get("nonce", b""), VICTIM))
            await protocol.write_frame(writer, protocol.answer_ok(message["id"], fake))
    except (asyncio.IncompleteReadError, ConnectionError, TimeoutError):
        writer.close()


@pytest.fixture
async def hub(tmp_path):
    server = await asyncio.start_server(impostor, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    (tmp_path / "configuration.yaml").write_text(
        f"lightnode:\n  reconnect_max: 0.2\n  devices:\n    - {{host: 127.0.0.1, port: {port}, name: Plug}}\n")
    hub = Hub(tmp_path, entrypoints=False)
    hub.plugins.register("lightnode", hub_lightnode)
    await hub.start()
    yield hub
    await hub.stop()
    server.close()


async def test_a_hello_claiming_someone_elses_key_registers_nothing(hub):
    link = hub.contexts["lightnode"].data["devices"].links[0]
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 10
    while link.failures < 2 and loop.time() < deadline:
        await asyncio.sleep(0.02)
    assert link.failures >= 2 and "could not show it holds key" in link.last_error
    assert not link.connected
    assert hub.devices.get(f"lightnode:{VICTIM.hex()}") is None
    assert hub.states.get("switch.plug_relay") is None


async def test_a_statement_for_a_device_that_is_not_connected_fails_loudly(hub):
    from hub.crypto.signing import Network
    from hub.crypto.statements import Grant, sign

    from hub_lightnode.link import NotConnected

    owner = keys.PrivateKey.generate()
    grant = sign(Grant(VICTIM, owner.public_key, owner.public_key, ["*"], 0, 0, 0, "share"), owner,
                 Network("ruff-test", bytes(32)))
    with pytest.raises(NotConnected, match="has not connected since the hub started"):
        await hub.plugins.call_one("lightnode", "hub_deliver_statement", hub=hub.contexts["lightnode"],
                                   device_id=VICTIM.hex(), signed=grant)

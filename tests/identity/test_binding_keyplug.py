"""Strong binding, sharing and the reset button with a device that holds its own key: the keyplug
simulator in its own process, a real ``hub run`` with its driver, an embedded chain of 200 ms blocks.
The device, not the hub, checks the setup code and every statement (still with the hub down); the
chain follows, also after the hub restarts."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import pytest

from hub.chain.node.files import read_key, write_key
from hub.crypto.address import address_of, encode_address
from hub.crypto.keys import PrivateKey
from hub.crypto.statements import Command, sign
from hub.identity import labels
from tests.hubproc import HubProcess, run_cli

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "drivers" / "lightnode" / "tests"))
from keyplug_proc import Client, KeyPlug, command  # noqa: E402

from tests.identity.test_binding_cli import _chain_value, _cli, _network, _reason  # noqa: E402

CONFIG = """\
chain:
lightnode:
  ping_interval: 0.5
  timeout: 2
  reconnect_max: 0.5
  devices:
    - {{host: 127.0.0.1, port: {port}, name: Plug}}
"""


@pytest.fixture(params=["--strong"])
def plug(tmp_path, request):
    folder = tmp_path / "plug"
    folder.mkdir()
    device = KeyPlug(folder, *([request.param] if request.param else [])).start()
    yield device
    device.stop()


@pytest.fixture
def hub(tmp_path, plug):
    data = tmp_path / "data"
    chain = data / "chain"
    owner = PrivateKey.generate()
    write_key(chain / "keys" / "owner.key", owner)
    _cli(data, "chain", "genesis", "--out", str(chain), "--producers", "1", "--chain-id", "plugtest",
         "--set", "BLOCK_INTERVAL=200", "--balance", f"{encode_address(address_of(owner.public_key))}=1000")
    (data / "configuration.yaml").write_text(CONFIG.format(port=plug.port))
    proc = HubProcess(data).start()
    yield proc
    proc.stop()


def _call(hub, device_id: str, device: bytes, key: PrivateKey, command: str, counter: int) -> tuple[int, dict]:
    network = _network(hub)
    st = Command(chain=network.chain_id, device=device, entity="relay", command=command, args={},
                 issued_at=time.time_ns() // 1_000_000, counter=counter, signer=key.public_key)
    return hub.request("POST", f"/api/devices/{device_id}/signed-commands", sign(st, key, network).to_json(),
                       auth=False)


def test_strong_binding_share_revoke_and_the_reset_button(hub, plug):
    device = plug.public_key
    device_id = f"lightnode:{device.hex()}"
    hub.wait_for(lambda: hub.request("GET", f"/api/devices/{device_id}")[0] == 200, what="the plug's hello")
    png = next((plug.folder / "labels").glob("*-label.png"))
    label = labels.read(png)
    assert label.strong and label.public_key == device

    # A wrong setup code is refused by the device; nothing is bound.
    wrong = labels.Label(device, None, "0" * 10 if label.setup_code != "0" * 10 else "1" * 10).text()
    out = _cli(hub.data, "device", "bind", device_id, "--label", wrong, ok=False)
    assert "bad_setup_code" in out

    out = _cli(hub.data, "device", "bind", device_id, "--label", str(png))
    assert "strong" in out and "erased" not in out
    assert png.exists()  # no private key on a strong label: nothing to erase
    owner = read_key(hub.data / "chain" / "keys" / "owner.key")
    hub.wait_for(lambda: (_chain_value(hub.data, "dev", device) or (None,))[0] == owner.public_key,
                 timeout=15, what="the strong binding on chain")
    # The code is spent: the same label binds no one else.
    status, body = hub.request("POST", f"/api/devices/{device_id}/bind", {"label": label.text()})
    assert status == 409 and body["error"] == "already_bound"

    stranger, guest = PrivateKey.generate(), PrivateKey.generate()
    assert _reason(_call(hub, device_id, device, owner, "turn_on", 1)) == "ok"
    assert _reason(_call(hub, device_id, device, stranger, "turn_on", 1)) == "not_authorised"
    _cli(hub.data, "device", "share", device_id, "--to", guest.public_key.hex(), "--commands", "relay.turn_off")
    assert _reason(_call(hub, device_id, device, guest, "turn_off", 1)) == "ok"
    assert _reason(_call(hub, device_id, device, guest, "turn_on", 2)) == "not_granted"
    _cli(hub.data, "device", "revoke", device_id)
    assert _reason(_call(hub, device_id, device, guest, "turn_off", 3)) == "not_authorised"
    # The hub goes down; the device alone still refuses the revoked guest (its epoch, in its flash).
    network = _network(hub)
    assert hub.stop() == 0
    client = Client(plug.port)
    try:
        answer = client.deliver(command(device, guest, "turn_off", 4, network=network), network)
    finally:
        client.close()
    assert answer["reason"] == "not_authorised", answer

    # The reset button, with the hub back: the device forgets its controller, the hub's record and
    # the chain follow it.
    hub.start()
    hub.wait_for(lambda: hub.request("GET", f"/api/devices/{device_id}")[0] == 200, what="the plug's hello again")
    plug.press_reset()
    hub.wait_for(lambda: (_chain_value(hub.data, "dev", device) or (None,))[0] == b"", timeout=15,
                 what="the device's reset published on chain")
    assert _reason(_call(hub, device_id, device, owner, "turn_off", 2)) == "unbound"
    result = run_cli(hub.data, "devices", "--json")
    assert result.returncode == 0
    shown = next(r["identity"] for r in json.loads(result.stdout) if r.get("public_key") == device.hex())
    assert shown["controller"] is None
    # A strong binding never moved the device's private key: it is nowhere in the hub's files.
    seed = json.loads(plug.flash.read_text())["seed"]
    for path in hub.data.rglob("*"):
        if path.is_file():
            assert seed.encode() not in path.read_bytes() and bytes.fromhex(seed) not in path.read_bytes(), path


@pytest.mark.parametrize("plug", [""], indirect=True)
def test_label_binding_and_hand_over_are_checked_by_the_device(hub, plug):
    """Whitepaper mode on a device that holds its key: the hub signs the binding with the printed
    key, the device checks it; a hand-over goes to the device too, which then obeys the new key only."""
    device = plug.public_key
    device_id = f"lightnode:{device.hex()}"
    hub.wait_for(lambda: hub.request("GET", f"/api/devices/{device_id}")[0] == 200, what="the plug's hello")
    label = next((plug.folder / "labels").glob("*-label.txt"))
    out = _cli(hub.data, "device", "bind", device_id, "--label", str(label))
    assert "bound (label)" in out and "keep it safe" in out  # outside the hub's data: not erased
    owner = read_key(hub.data / "chain" / "keys" / "owner.key")
    assert _reason(_call(hub, device_id, device, owner, "turn_on", 1)) == "ok"

    heir = PrivateKey.generate()
    _cli(hub.data, "device", "transfer", device_id, "--to", heir.public_key.hex())
    assert _reason(_call(hub, device_id, device, owner, "turn_off", 2)) == "not_authorised"
    assert _reason(_call(hub, device_id, device, heir, "turn_off", 1)) == "ok"
    hub.wait_for(lambda: (_chain_value(hub.data, "dev", device) or (None,))[0] == heir.public_key, timeout=15,
                 what="the hand-over on chain")

    # The device gone: the hub says it could not ask it (naming it), never a 500, and publishes nothing.
    plug.stop()
    status, body = hub.request("POST", f"/api/devices/{device_id}/bind", {"label": label.read_text().strip()})
    assert (status, body["error"]) == (502, "device_unreachable") and device_id in body["message"], body
    assert _chain_value(hub.data, "dev", device)[0] == heir.public_key

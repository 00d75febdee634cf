"""The ownership flows of ``hub device`` with a device that holds its key: a real ``hub run`` with the
embedded chain, the keyplug in its own process, and the CLI as a user types it. The label is what
the plug printed; every statement is checked by the plug itself."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from hub.chain.node.files import read_key, write_key
from hub.chain.node.store import ChainStore
from hub.crypto import keys
from hub.crypto.address import address_of, encode_address

from keyplug_proc import Client, KeyPlug, command

REPO = Path(__file__).resolve().parents[3]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from tests.hubproc import HubProcess, run_cli  # noqa: E402

RELAY = "switch.kitchen_plug_relay"
CONFIG = """\
chain: {{}}
lightnode:
  ping_interval: 0.5
  reconnect_max: 0.5
  devices:
    - {{host: 127.0.0.1, port: {port}, name: Kitchen plug}}
"""


@pytest.fixture
def setup(tmp_path):
    started: list = []

    def start(*plug_args: str) -> tuple[KeyPlug, HubProcess]:
        (tmp_path / "plug").mkdir()
        device = KeyPlug(tmp_path / "plug", *plug_args).start()
        started.append(device)
        data = tmp_path / "hub"
        fast_chain(data)
        (data / "configuration.yaml").write_text(CONFIG.format(port=device.port))
        process = HubProcess(data, extra_env={"PYTHONUNBUFFERED": "1"}).start()
        started.append(process)
        process.wait_for(lambda: process.request("GET", f"/api/states/{RELAY}")[1].get("available"), what="the plug")
        return device, process

    yield start
    for proc in reversed(started):
        proc.stop()


def fast_chain(data: Path) -> None:
    """An embedded chain of 200 ms blocks whose owner key (the hub's controller) can pay its fees."""
    chain = data / "chain"
    (chain / "keys").mkdir(parents=True)
    owner = keys.PrivateKey.generate()
    write_key(chain / "keys" / "owner.key", owner)
    made = run_cli(data, "chain", "genesis", "--out", str(chain), "--producers", "1", "--chain-id", "plugtest",
                   "--set", "BLOCK_INTERVAL=200",
                   "--balance", f"{encode_address(address_of(owner.public_key))}=1000")
    assert made.returncode == 0, made.stdout + made.stderr


def cli(process: HubProcess, *args: str) -> str:
    result = run_cli(process.data, *args)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout + result.stderr


def identity(process: HubProcess, device: KeyPlug) -> dict:
    """What ``hub devices`` shows of the plug: its key, its controller, its grants."""
    rows = json.loads(run_cli(process.data, "devices", "--json").stdout)
    return next(r["identity"] for r in rows if r.get("public_key") == device.public_key.hex())


def chain_controller(process: HubProcess, device: KeyPlug):
    store = ChainStore(process.data / "chain")
    try:
        value = store.state_value("dev", device.public_key)
    finally:
        store.close()
    return value[0] if value else None


def test_bind_share_revoke_and_the_reset_button(setup):
    device, process = setup()
    device_id = f"lightnode:{device.public_key.hex()}"
    label_png = next(device.labels.glob("*-label.png"))
    out = cli(process, "device", "bind", device_id, "--label", str(label_png))
    assert "bound" in out
    owner = read_key(process.data / "chain" / "keys" / "owner.key")
    assert identity(process, device)["controller"] == owner.public_key.hex()
    process.wait_for(lambda: chain_controller(process, device) == owner.public_key, timeout=20, what="on chain")
    assert process.request("POST", f"/api/entities/{RELAY}/commands/turn_on")[0] == 200
    process.wait_for(lambda: process.get(f"/api/states/{RELAY}")["value"] == "on", what="the relay on")

    # A second admin: the grant goes to the device, which then obeys the admin's own signature.
    admin = keys.PrivateKey.generate()
    cli(process, "device", "share", device_id, "--to", admin.public_key.hex())
    net = _network(process)
    route = f"/api/devices/{device_id}/signed-commands"
    signed = command(device.public_key, admin, "turn_off", 1, network=net)
    assert process.request("POST", route, signed.to_json(), auth=False)[0] == 200
    cli(process, "device", "revoke", device_id)
    # The hub goes down; the device alone still refuses the revoked admin (its epoch, in its flash).
    process.stop()
    client = Client(device.port)
    answer = client.deliver(command(device.public_key, admin, "turn_on", 2, network=net), net)
    assert answer["reason"] == "not_authorised", answer
    client.close()

    # The reset button, with the hub back: the hub's record and the chain follow the device.
    process.start()
    process.wait_for(lambda: process.request("GET", f"/api/states/{RELAY}")[1].get("available"), what="the plug")
    device.press_reset()
    process.wait_for(lambda: identity(process, device)["controller"] is None, what="the hub's record reset")
    process.wait_for(lambda: chain_controller(process, device) == b"", timeout=20, what="the reset on chain")
    code, body = process.request("POST", f"/api/entities/{RELAY}/commands/turn_on")
    assert (code, body["reason"]) == (409, "unbound"), body


def test_strong_binding_with_the_cli_never_moves_the_private_key(setup):
    device, process = setup("--strong")
    device_id = f"lightnode:{device.public_key.hex()}"
    label = next(device.labels.glob("*-label.txt"))
    wrong = label.read_text().strip()[:-10] + "0000000000"
    failed = run_cli(process.data, "device", "bind", device_id, "--label", wrong)
    assert failed.returncode != 0 and "the setup code does not match" in failed.stderr
    cli(process, "device", "bind", device_id, "--label", str(label))
    owner = read_key(process.data / "chain" / "keys" / "owner.key")
    assert identity(process, device)["controller"] == owner.public_key.hex()
    assert process.request("POST", f"/api/entities/{RELAY}/commands/turn_on")[0] == 200
    seed = json.loads(device.flash.read_text())["seed"]
    for path in process.data.rglob("*"):
        if path.is_file():
            assert seed.encode() not in path.read_bytes() and bytes.fromhex(seed) not in path.read_bytes(), path


def _network(process: HubProcess):
    from hub.crypto.signing import Network

    info = process.get("/api/identity", auth=False)
    return Network(info["chain_id"], bytes.fromhex(info["genesis_hash"]))

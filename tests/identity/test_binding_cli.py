"""Ownership of a device from the terminal, against a real ``hub run`` (the demo plug, keyless, the
hub its light node) on an embedded chain with 200 ms blocks: keygen, bind (and the seed erased
everywhere the hub held it), signed commands from the controller and from others, share and
revoke, transfer, reset, and a sale settled on chain with payment and control moving together."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from hub.chain.node.files import read_key
from hub.chain.node.store import ChainStore
from hub.crypto.address import address_of, encode_address
from hub.crypto.keys import PrivateKey
from hub.crypto.signing import Network
from hub.crypto.statements import Command, sign
from hub.identity import labels
from tests.hubproc import DEMO, HubProcess, hub_command, run_cli

PLUG = "demo:smart_plug"
RUFF = 10**6


def _cli(data: Path, *args: str, ok: bool = True) -> str:
    result = run_cli(data, *args)
    if ok:
        assert result.returncode == 0, result.stdout + result.stderr
    else:
        assert result.returncode != 0, result.stdout + result.stderr
    return result.stdout + result.stderr


def _json(data: Path, *args: str):
    return json.loads(run_cli(data, *args, "--json").stdout)


@pytest.fixture
def hub(tmp_path):
    """The demo home and a fast embedded chain whose owner key (the hub's controller) is not the
    producer, so the owner's balance moves only by what it pays and is paid."""
    data = tmp_path / "data"
    chain = data / "chain"
    (chain / "keys").mkdir(parents=True)
    owner = PrivateKey.generate()
    from hub.chain.node.files import write_key

    write_key(chain / "keys" / "owner.key", owner)
    _cli(data, "chain", "genesis", "--out", str(chain), "--producers", "1", "--chain-id", "bindtest",
         "--set", "BLOCK_INTERVAL=200", "--balance", f"{encode_address(address_of(owner.public_key))}=1000")
    (data / "configuration.yaml").write_text(DEMO + "chain:\n")
    proc = HubProcess(data).start()
    yield proc
    proc.stop()


def _network(hub) -> Network:
    info = hub.get("/api/identity")
    return Network(info["chain_id"], bytes.fromhex(info["genesis_hash"]))


class Signer:
    def __init__(self, hub, device_key: bytes, key: PrivateKey | None = None) -> None:
        self.hub, self.device, self.key = hub, device_key, key or PrivateKey.generate()
        self.network = _network(hub)
        self.counter = 0

    def call(self, command: str, entity: str = "outlet") -> tuple[int, dict]:
        self.counter += 1
        st = Command(chain=self.network.chain_id, device=self.device, entity=entity, command=command, args={},
                     issued_at=time.time_ns() // 1_000_000, counter=self.counter, signer=self.key.public_key)
        return self.hub.request("POST", f"/api/devices/{PLUG}/signed-commands",
                                sign(st, self.key, self.network).to_json(), auth=False)


def _reason(answer: tuple[int, dict]) -> str:
    status, body = answer
    return "ok" if status == 200 else body.get("reason") or body.get("error")


def _chain_value(data: Path, ns: str, key) -> object:
    store = ChainStore(data / "chain")
    try:
        return store.state_value(ns, key)
    finally:
        store.close()


def _wait_chain(hub, ns: str, key, predicate, what: str):
    return hub.wait_for(lambda: (lambda v: v if predicate(v) else None)(_chain_value(hub.data, ns, key)),
                        timeout=15, what=what)


def test_keygen_bind_control_share_revoke_transfer_reset(hub, tmp_path):
    data = hub.data
    made = _json(data, "device", "keygen", "--device", PLUG)
    device = bytes.fromhex(made["public_key"])
    seed = read_key(Path(made["files"]["key"])).seed
    printed = tmp_path / "printed-label.txt"  # what went onto the device: kept outside the hub
    shutil.copy(made["files"]["txt"], printed)

    out = _cli(data, "device", "bind", PLUG, "--label", made["files"]["png"])
    assert "bound" in out and "erased" in out
    for path in made["files"].values():
        assert not Path(path).exists(), f"{path} still holds the device's private key"
    owner = read_key(data / "chain" / "keys" / "owner.key")
    assert _wait_chain(hub, "dev", device, lambda v: v and v[0], "the binding on chain")[0] == owner.public_key

    controller, stranger = Signer(hub, device, owner), Signer(hub, device)
    assert _reason(controller.call("turn_on")) == "ok"
    assert hub.get("/api/states/switch.smart_plug")["value"] == "on"
    assert _reason(stranger.call("turn_off")) == "not_authorised"

    # Share only turn_on with a guest; then revoke the guest alone, keeping a second admin.
    guest, admin = Signer(hub, device), Signer(hub, device)
    _cli(data, "device", "share", PLUG, "--to", guest.key.public_key.hex(), "--commands", "outlet.turn_on")
    _cli(data, "device", "share", PLUG, "--to", admin.key.public_key.hex())
    assert _reason(guest.call("turn_on")) == "ok"
    assert _reason(guest.call("turn_off")) == "not_granted"
    assert _reason(admin.call("turn_off")) == "ok"
    out = _cli(data, "device", "revoke", PLUG, "--grantee", guest.key.public_key.hex())
    assert "epoch 1" in out
    assert _reason(guest.call("turn_on")) == "not_authorised"
    assert _reason(admin.call("turn_on")) == "ok"  # granted again in the new epoch
    assert _wait_chain(hub, "dev", device, lambda v: v and v[3] == 1, "the revocation on chain")

    # Hand over to a new controller: the hub's key is out, the new one in, on the device and on chain.
    heir = Signer(hub, device)
    _cli(data, "device", "transfer", PLUG, "--to", heir.key.public_key.hex())
    assert _reason(controller.call("turn_off")) == "not_authorised"
    assert _reason(heir.call("turn_off")) == "ok"
    assert _wait_chain(hub, "dev", device, lambda v: v and v[0] == heir.key.public_key, "the hand-over on chain")
    out = _cli(data, "device", "transfer", PLUG, "--to", stranger.key.public_key.hex(), ok=False)
    assert "not_authorised" in out or "controlled by" in out

    # Factory reset with the printed label: nobody controls it, on the device and on chain.
    _cli(data, "device", "reset", PLUG, "--label", str(printed))
    assert _reason(heir.call("turn_on")) == "unbound"
    assert _wait_chain(hub, "dev", device, lambda v: v and v[0] == b"", "the reset on chain")

    # The seed never reached the hub's files (databases, logs, run files) or its log.
    for path in data.rglob("*"):
        if path.is_file():
            raw = path.read_bytes()
            assert seed not in raw and seed.hex().encode() not in raw, path
    log = hub.log()
    assert seed.hex() not in log


def test_bad_requests_are_named(hub, tmp_path):
    data = hub.data
    out = _cli(data, "device", "bind", PLUG, "--label", "ruff-device:1:sk:1234", ok=False)
    assert "private key: 32 bytes" in out
    out = _cli(data, "device", "bind", PLUG, "--label", str(tmp_path / "nothing.png"), ok=False)
    assert "neither label text" in out
    label, text = labels.make()
    out = _cli(data, "device", "bind", PLUG, "--label", text, ok=False)
    assert "has no key yet" in out and "keygen" in out  # no identity set for the plug
    made = _json(data, "device", "keygen", "--device", PLUG)
    out = _cli(data, "device", "bind", PLUG, "--label", text, ok=False)  # another device's label
    assert "is for device key" in out
    status, body = hub.request("POST", f"/api/devices/{PLUG}/bind", {"label": text, "signed": {}})
    assert status == 422 and "either" in body["message"]
    status, body = hub.request("POST", "/api/devices/demo:nothing/bind", {"label": text})
    assert status == 404
    status, body = hub.request("POST", f"/api/devices/{PLUG}/transfer", {"to": "ab" * 32})
    assert status == 409 and body["error"] == "unbound"
    status, body = hub.request("POST", f"/api/devices/{PLUG}/shares", {"to": "ab" * 32, "commands": ["outlet"]})
    assert status in (409, 422)

    # A device key is one device's, and a new key on a bound device is refused unless meant.
    status, body = hub.request("POST", "/api/devices/demo:thermostat/identity", {"public_key": made["public_key"]})
    assert status == 409 and "already 'demo:smart_plug'" in body["message"]
    _cli(data, "device", "bind", PLUG, "--label", made["files"]["txt"])
    status, body = hub.request("POST", f"/api/devices/{PLUG}/identity", {"public_key": "cd" * 32})
    assert status == 409 and "is bound" in body["message"]
    before = sorted((data / "identity" / "labels").iterdir())
    out = _cli(data, "device", "keygen", "--device", PLUG, "--name", "again", ok=False)
    assert "is bound" in out and sorted((data / "identity" / "labels").iterdir()) == before  # no orphan key files
    out = _cli(data, "device", "keygen", "--device", "demo:nothing", "--name", "nothing", ok=False)
    assert "demo:nothing" in out and not (data / "identity" / "labels" / "nothing.key").exists()
    status, body = hub.request("POST", f"/api/devices/{PLUG}/identity", {"public_key": "cd" * 32, "holds_key": True})
    assert status == 422  # a key-holding device's key comes from its driver, never from here
    status, body = hub.request("POST", f"/api/devices/{PLUG}/revoke", {"grantee": "ef" * 32})
    assert status == 404 and "no live grant" in body["message"]
    status, body = hub.request("POST", f"/api/devices/{PLUG}/identity", {"public_key": "cd" * 32, "replace": True})
    assert status == 200
    assert hub.get(f"/api/devices/{PLUG}")["identity"]["controller"] is None


def test_sale_moves_payment_and_control_in_one_transaction(hub, tmp_path):
    data = hub.data
    made = _json(data, "device", "keygen", "--device", PLUG)
    device = bytes.fromhex(made["public_key"])
    pasted = subprocess.run(hub_command("--data", str(data), "device", "bind", PLUG, "--label", "-", "--wait"),
                            input=Path(made["files"]["txt"]).read_text(), capture_output=True, text=True, timeout=30)
    assert pasted.returncode == 0, pasted.stdout + pasted.stderr
    out = pasted.stdout
    assert "in block" in out  # --wait: the binding is on chain when the command returns
    owner = read_key(data / "chain" / "keys" / "owner.key")
    assert _chain_value(data, "dev", device)[0] == owner.public_key

    buyer_file = tmp_path / "buyer.key"
    _cli(data, "chain", "keygen", "--out", str(buyer_file))
    buyer = read_key(buyer_file)
    buyer_addr, seller_addr = address_of(buyer.public_key), address_of(owner.public_key)
    _cli(data, "chain", "send", encode_address(buyer_addr), "50", "--wait")
    _wait_chain(hub, "acct", buyer_addr, lambda v: v and v[0] == 50 * RUFF, "the buyer's funds")

    offer = tmp_path / "offer.json"
    _cli(data, "device", "sell", PLUG, "--price", "12.5", "--expires", "1h", "--buyer", buyer.public_key.hex(),
         "--out", str(offer))
    # Someone else cannot redeem an offer made to this buyer.
    out = _cli(data, "device", "buy", str(offer), "--key", str(data / "chain" / "keys" / "owner.key"), ok=False)
    assert "the offer is for buyer" in out

    seller_before = _chain_value(data, "acct", seller_addr)[0]
    bought = _json(data, "device", "buy", str(offer), "--key", str(buyer_file))
    assert bought["status"] == "included", bought
    record = _chain_value(data, "dev", device)
    assert record[0] == buyer.public_key
    assert _chain_value(data, "acct", seller_addr)[0] == seller_before + 12_500_000
    assert _chain_value(data, "acct", buyer_addr)[0] == 50 * RUFF - 12_500_000 - bought["fee"]
    # The hub follows the chain (it plays the keyless plug's light node): the buyer's key now commands it.
    hub.wait_for(lambda: hub.get(f"/api/devices/{PLUG}")["identity"]["controller"] == buyer.public_key.hex(),
                 timeout=15, what="the hub's record to follow the sale")
    assert _reason(Signer(hub, device, buyer).call("turn_on")) == "ok"
    assert _reason(Signer(hub, device, owner).call("turn_off")) == "not_authorised"

    # The same offer again: refused by the chain (its seller controls the device no more); nothing moves.
    again = run_cli(data, "device", "buy", str(offer), "--key", str(buyer_file))
    assert again.returncode != 0 and "not_controller" in again.stdout + again.stderr
    assert _chain_value(data, "acct", buyer_addr)[0] == 50 * RUFF - 12_500_000 - bought["fee"]
    assert _chain_value(data, "dev", device)[0] == buyer.public_key


def test_without_a_chain_binding_says_why(tmp_path):
    """No `chain:` section: the device gets its key, but a binding has no network to be signed for."""
    data = tmp_path / "nochain"
    data.mkdir()
    (data / "configuration.yaml").write_text(DEMO)
    hub = HubProcess(data).start()
    try:
        made = _json(data, "device", "keygen", "--device", PLUG)
        out = _cli(data, "device", "bind", PLUG, "--label", made["files"]["txt"], ok=False)
        assert "no chain" in out and "Traceback" not in out
        assert Path(made["files"]["key"]).exists()  # nothing bound, so nothing erased
        status, body = hub.request("POST", f"/api/devices/{PLUG}/shares", {"to": "ab" * 32})
        assert 400 <= status < 500, body
        assert hub.request("POST", "/api/entities/switch.smart_plug/commands/turn_on")[0] == 200  # local control as ever
    finally:
        hub.stop()

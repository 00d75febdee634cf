"""The market's command line against a real ``hub run`` (the demo plug, keyless, bound to the hub's
key) on an embedded chain with 200 ms blocks and short market periods: what the owner's routes and a
renter's (a signed request to end a call) refuse."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from hub.chain.node.files import read_key, write_key
from hub.chain.node.store import ChainStore
from hub.crypto.address import address_of, encode_address
from hub.crypto.keys import PrivateKey
from hub.crypto.signing import Network
from hub.crypto.statements import Command, sign
from tests.hubproc import DEMO, HubProcess, run_cli

PLUG = "demo:smart_plug"
RUFF = 10**6


def _cli(data: Path, *args: str, ok: bool = True) -> str:
    result = run_cli(data, *args, timeout=120)
    out = result.stdout + result.stderr
    assert (result.returncode == 0) == ok, out
    return out


@pytest.fixture
def market(tmp_path):
    """A hub whose plug is bound to its owner key and offered metered by time, 0.1 RUFF a second,
    and a renter key holding 20 RUFF."""
    data = tmp_path / "data"
    chain = data / "chain"
    (chain / "keys").mkdir(parents=True)
    owner = PrivateKey.generate()
    write_key(chain / "keys" / "owner.key", owner)
    _cli(data, "chain", "genesis", "--out", str(chain), "--producers", "1", "--chain-id", "clitest",
         "--set", "BLOCK_INTERVAL=200", "--set", "CHALLENGE_PERIOD=1000", "--set", "REFUND_TIMEOUT=1000",
         "--balance", f"{encode_address(address_of(owner.public_key))}=1000")
    (data / "configuration.yaml").write_text(DEMO + "chain:\nmarket:\n  poll: 0.1\n")
    hub = HubProcess(data).start()
    try:
        made = json.loads(run_cli(data, "device", "keygen", "--device", PLUG, "--json").stdout)
        _cli(data, "device", "bind", PLUG, "--label", made["files"]["png"], "--wait")
        contract = run_cli(data, "market", "offer", PLUG, "--commands", "outlet.turn_on,outlet.turn_off",
                           "--rate", "0.1", "--per", "1s", "--deposit", "1", "--max", "1h", "--yes", "--wait")
        assert contract.returncode == 0, contract.stderr
        renter_key = tmp_path / "renter.key"
        address = run_cli(data, "chain", "keygen", "--out", str(renter_key)).stdout.split()[0]
        _cli(data, "chain", "send", address, "20", "--wait")
        yield hub, contract.stdout.strip(), renter_key
    finally:
        hub.stop()


def _chain(hub: HubProcess, ns: str, key: bytes):
    store = ChainStore(hub.data / "chain")
    try:
        return store.state_value(ns, key)
    finally:
        store.close()


def test_owner_routes_need_the_token_and_refuse_bad_input(market):
    hub, contract, _renter_key = market
    for method, path in (("GET", "/api/market/contracts"), ("GET", "/api/market/earnings"),
                         ("POST", "/api/market/offers")):
        assert hub.request(method, path, {} if method == "POST" else None, auth=False)[0] == 401
    status, body = hub.request("POST", "/api/market/offers", {"device": "nope", "commands": ["a.b"],
                                                              "terms": {"kind": "prepaid"}})
    assert status == 404 and "nope" in body["message"]
    status, body = hub.request("POST", "/api/market/offers", {"device": PLUG, "commands": ["outlet.turn_on"],
                                                              "terms": {"kind": "prepaid", "price": 0}, "preview": True})
    assert status == 422 and "terms" in body["message"]
    status, body = hub.request("GET", "/api/market/earnings?since=yesterday")
    assert status == 422 and "since" in body["message"]
    [row] = hub.get("/api/market/contracts")
    assert row["id"] == contract


def test_a_renters_routes_refuse_what_is_not_the_renters(market):
    hub, contract, renter_key = market
    unknown = "ab" * 32
    assert hub.request("GET", "/api/market/calls/xyz", auth=False)[0] == 422
    assert hub.request("GET", f"/api/market/calls/{unknown}", auth=False)[0] == 404
    assert hub.request("GET", f"/api/market/calls/{unknown}/receipt", auth=False)[0] == 404

    # A call to end, made directly (`hub market rent` would end it itself).
    from hub.chain.cli_support import _Chain
    from hub.chain.protocol.payloads import parse

    key = read_key(renter_key)
    source = _Chain(hub.data / "chain")
    call = source.submit(key, "call", parse("call", {"contract": bytes.fromhex(contract), "deposit": 2 * RUFF}),
                         None, True, False)
    hub.wait_for(lambda: hub.request("GET", f"/api/market/calls/{call.hex()}", auth=False)[0] == 200, timeout=20,
                 what="the hub seeing the call")
    info = hub.get("/api/identity")
    net = Network(info["chain_id"], bytes.fromhex(info["genesis_hash"]))
    device = bytes.fromhex(hub.get(f"/api/identity?device={PLUG}", auth=False)["device"]["public_key"])

    def end(signer: PrivateKey, *, args=None, issued=None, entity="market", tamper=False):
        st = Command(net.chain_id, device, entity, "end", args or {"call": call.hex()},
                     issued or time.time_ns() // 1_000_000, time.time_ns() // 1000, signer.public_key)
        signed = sign(st, signer, net).to_json()
        if tamper:
            signed["sig"] = ("00" if signed["sig"][:2] != "00" else "11") + signed["sig"][2:]
        return hub.request("POST", f"/api/market/calls/{call.hex()}/end", {"signed": signed}, auth=False)

    assert end(PrivateKey.generate())[0] == 403  # not the renter
    assert end(key, tamper=True)[0] == 401  # forged
    assert end(key, issued=time.time_ns() // 1_000_000 - 3_600_000)[0] == 422  # stale
    assert end(key, args={"call": "cd" * 32})[0] == 422  # another call
    assert end(key, entity="outlet")[0] == 422  # not an end request
    assert hub.request("POST", f"/api/market/calls/{call.hex()}/end", {"signed": {"kind": "x"}}, auth=False)[0] == 422
    status, body = end(key)
    assert status == 200 and body["ended"] is True
    assert end(key)[0] == 409  # ended already

"""The market's command line against a real ``hub run`` (the demo plug, keyless, bound to the hub's
key) on an embedded chain with 200 ms blocks and short market periods: a metered rental streamed by
``hub market rent`` (receipts checked, cheques signed and taken, the return paying what the last
cheque covers, to the unit), the renter's channel and its close alone, and what the owner's routes
and a renter's (a signed request to end a call) refuse."""

from __future__ import annotations

import json
import re
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


def test_metered_rent_streams_cheques_and_the_return_pays_the_last_one(market):
    hub, contract, renter_key = market
    data = hub.data
    offers = _cli(data, "market", "offers")
    assert contract[:16] in offers.replace("\n", "") or contract in offers
    assert "metered: 0.1 RUFF per 1 s, deposit 1 RUFF" in offers.replace("\n", " ") or "0.1 RUFF per 1 s" in offers

    out = _cli(data, "market", "rent", contract, "--deposit", "5", "--key", str(renter_key), "--for", "3s",
               "--every", "0.5", "--yes")
    assert "fee of the call transaction" in out and "into your channel" in out
    assert "access granted" in out and "ended" in out
    costs = [int(round(float(m) * RUFF)) for m in re.findall(r"cost ([0-9.]+) RUFF", out)]
    assert costs and costs == sorted(costs) and costs[-1] > 0, out
    assert "not taken" not in out, out  # every cheque the renter signed, the hub took

    call = bytes.fromhex(re.search(r"call ([0-9a-f]{64})", out).group(1))
    book = json.loads(renter_key.with_name(renter_key.name + ".cheques.json").read_text())
    [(channel, last)] = book.items()
    assert last["amount"] == costs[-1]
    # The owner's return pays exactly what the last cheque covers for this call, once.
    record = hub.wait_for(lambda: (r := _chain(hub, "call", call)) and r[6] == "returned" and r, timeout=30,
                          what="the owner's return on chain")
    assert record[7] == last["signed"]["body"]["call_amount"] == costs[-1]
    chan = _chain(hub, "chan", bytes.fromhex(channel))
    assert chan[2] == 5 * RUFF and chan[3] == costs[-1]  # deposit, withdrawn
    earned = hub.wait_for(lambda: hub.get("/api/market/earnings"), timeout=15, what="the payment in the earnings")
    assert [(e["call"], e["amount"]) for e in earned] == [(call.hex(), costs[-1])]
    csv = _cli(data, "market", "earnings", "--csv", "--since", "1h").splitlines()
    assert csv[0] == "time_utc,device,contract,call,amount_ruff,amount_units"
    assert csv[1].endswith(f",{PLUG},{contract},{call.hex()},{costs[-1] // RUFF}.{costs[-1] % RUFF:06d},{costs[-1]}")
    assert _cli(data, "market", "earnings", "--csv", "--device", "demo:other").splitlines()[1:] == []

    # The renter's view of its channel, then its close alone and the payout after the challenge.
    listed = _cli(data, "market", "channel", "--key", str(renter_key))
    assert channel[:16] in listed.replace("\n", "") or channel in listed
    _cli(data, "market", "channel", "close", channel, "--key", str(renter_key), "--yes")
    closing = hub.wait_for(lambda: (c := _chain(hub, "chan", bytes.fromhex(channel))) and c[5] and c, timeout=15,
                           what="the channel closing on chain")
    assert closing[4] == costs[-1]  # the renter closed with its last cheque
    time.sleep(1.5)  # CHALLENGE_PERIOD is 1 s in this genesis
    before = _chain(hub, "acct", address_of(read_key(renter_key).public_key))[0]
    out = _cli(data, "market", "refund", channel, "--key", str(renter_key), "--yes")
    hub.wait_for(lambda: _chain(hub, "chan", bytes.fromhex(channel))[7], timeout=15, what="the channel paid out")
    after = _chain(hub, "acct", address_of(read_key(renter_key).public_key))[0]
    fee = int(round(float(re.search(r"fee of the refund transaction: ([0-9.]+) RUFF", out).group(1)) * RUFF))
    assert after == before - fee + 5 * RUFF - costs[-1]  # the rest of the deposit, to the unit


def test_ctrl_c_ends_a_metered_rental_with_a_final_cheque(market):
    import os
    import signal
    import subprocess

    from tests.hubproc import hub_command

    hub, contract, renter_key = market
    proc = subprocess.Popen(hub_command("--data", str(hub.data), "market", "rent", contract, "--deposit", "2",
                                       "--key", str(renter_key), "--every", "0.3", "--yes"),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, "COLUMNS": "200"})
    seen = []
    try:
        for line in proc.stdout:  # until it has paid twice: the rental runs
            seen.append(line)
            if sum("cost " in s for s in seen) >= 2:
                break
        proc.send_signal(signal.SIGINT)
        rest, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    out = "".join(seen) + rest
    assert proc.returncode == 0, out
    assert "ending the rental" in out and "ended;" in out, out
    call = bytes.fromhex(re.search(r"call ([0-9a-f]{64})", out).group(1))
    paid = int(round(float(re.search(r"paid ([0-9.]+) RUFF", out).group(1)) * RUFF))
    record = hub.wait_for(lambda: (r := _chain(hub, "call", call)) and r[6] == "returned" and r, timeout=30,
                          what="the owner's return on chain")
    assert record[7] == paid > 0  # the final cheque is what the return took


def test_prepaid_rent_for_longer_than_paid_stops_at_the_window(market):
    hub, _metered, renter_key = market
    contract = run_cli(hub.data, "market", "offer", PLUG, "--commands", "outlet.turn_on", "--price", "0.5",
                       "--window", "1s", "--max", "2s", "--yes", "--wait").stdout.strip()
    started = time.monotonic()
    out = _cli(hub.data, "market", "rent", contract, "--deposit", "5", "--key", str(renter_key), "--for", "1h", "--yes")
    assert "pays 2 × 1 s (at most 1 RUFF" in out, out  # 5 RUFF would pay 10 windows; --max allows 2
    # At the window's end: ended by the hub already, or by this request a moment before it would have.
    assert "access granted" in out and ("the rental has ended" in out or "ended;" in out), out
    assert time.monotonic() - started < 60  # not the hour asked for: the paid window is over
    out = _cli(hub.data, "market", "end", "--key", str(renter_key))
    assert "used 1 RUFF, 4 RUFF of the deposit back to you" in out, out


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
    for commands, said in ((["outlet.turn_onn"], "no command 'turn_onn'"), (["socket.turn_on"], "no entity 'socket'")):
        status, body = hub.request("POST", "/api/market/offers", {"device": PLUG, "commands": commands, "terms": {
            "kind": "prepaid", "price": 1, "window": 1000, "max_duration": 1000}})
        assert status == 422 and said in body["message"], body
    status, body = hub.request("POST", "/api/market/offers", {"device": PLUG, "commands": ["outlet.turn_on"], "terms": {
        "kind": "metered", "rate": 1, "meter": "power", "deposit": 0, "max_duration": 1000}})
    assert status == 422 and "no meter 'power' (its meters: energy)" in body["message"], body
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


def test_receipts_asked_in_a_burst_are_not_signed_and_stored_each_time(market):
    """No token is needed to ask for a receipt, so a burst of requests must not each sign and
    store one (market.db would grow with every request anyone sends)."""
    import sqlite3

    from hub.chain.cli_support import _Chain
    from hub.chain.protocol.payloads import parse

    hub, contract, renter_key = market
    call = _Chain(hub.data / "chain").submit(read_key(renter_key), "call", parse("call", {
        "contract": bytes.fromhex(contract), "deposit": 2 * RUFF}), None, True, False)
    path = f"/api/market/calls/{call.hex()}/receipt"
    hub.wait_for(lambda: hub.request("GET", path, auth=False)[0] == 200, timeout=20, what="the first receipt")
    started = time.monotonic()
    answers = [hub.request("GET", path, auth=False) for _ in range(30)]
    elapsed = time.monotonic() - started
    assert all(status == 200 for status, _ in answers)
    conn = sqlite3.connect(f"file:{hub.data / 'market' / 'market.db'}?mode=ro", uri=True)
    try:
        stored = conn.execute("SELECT COUNT(*) FROM receipts WHERE call = ?", (call,)).fetchone()[0]
    finally:
        conn.close()
    from hub.market.api import RECEIPT_EVERY

    # At most one new receipt per RECEIPT_EVERY however fast they are asked (plus the first one).
    assert stored <= 2 + int(elapsed / RECEIPT_EVERY), (stored, elapsed)

"""A device that goes offline mid-rental: the keyplug simulator (a device that holds its own key and
meters its energy) in its own process, rented by the kWh through the owner's ``hub run`` (embedded
chain). The plug is killed while the renter draws power: its meter stops, so the receipts stop
rising; the renter ends the call and the return charges exactly what the last receipt shows (the
renter's latest cheque), no more."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

from hub.crypto.statements import Command, sign
from tests.market.e2e.kit import (FUNDS, OWNER, RENTER, RUFF, STATUS, Embedded, Owner, Renter, call, latest_receipt,
                                  now_ms, pay, wait_until)

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "drivers" / "lightnode" / "tests"))
from keyplug_proc import KeyPlug  # noqa: E402

LIGHTNODE = """\
lightnode:
  ping_interval: 0.5
  timeout: 2
  reconnect_max: 0.5
  devices:
    - {{host: 127.0.0.1, port: {port}, name: Plug}}
"""
TERMS = {"kind": "metered", "rate": 1000 * RUFF, "meter": "energy", "interval": 0, "deposit": 5 * RUFF,
         "max_duration": 60_000}  # 1 RUFF per Wh: the simulator's 1.5 kW make ~0.4 RUFF a second


@pytest.fixture
def plug(tmp_path):
    folder = tmp_path / "plug"
    folder.mkdir()
    device = KeyPlug(folder, "--tick", "0.2").start()
    yield device
    if device.proc.poll() is None:
        device.stop()


def _command(owner: Owner, device_id: str, device: bytes, key, name: str, counter: int) -> tuple[int, dict]:
    net = owner.chain.genesis.network
    st = Command(net.chain_id, device, "relay", name, {}, now_ms(), counter, key.public_key)
    return owner.hub.request("POST", f"/api/devices/{device_id}/signed-commands", sign(st, key, net).to_json(),
                             auth=False)


def test_the_plug_dies_mid_rental_and_the_return_charges_its_last_receipt(tmp_path, plug):
    chain = Embedded(tmp_path / "owner")
    owner = Owner(tmp_path / "owner", chain, extra=LIGHTNODE.format(port=plug.port)).start()
    try:
        device = plug.public_key
        device_id = f"lightnode:{device.hex()}"
        wait_until("the plug's hello", lambda: owner.hub.request("GET", f"/api/devices/{device_id}")[0] == 200, 15)
        label = next((plug.folder / "labels").glob("*-label.txt"))
        owner.cli("device", "bind", device_id, "--label", str(label), "--wait")
        contract = bytes.fromhex(owner.json(
            "market", "offer", device_id, "--commands", "relay.turn_on,relay.turn_off", "--rate", "1000", "--per",
            "kWh", "--meter", "energy", "--deposit", "5", "--max", "60s", "--endpoint", owner.hub.url, "--yes",
            "--wait")["contract"])
        wait_until("the contract on chain", lambda: chain.truth.value("contract", contract), 15)
        called = call(chain, contract, 5 * RUFF)
        channel = chain.truth.value("call", called)[3]
        counter = iter(range(1, 1000))
        wait_until("the renter's grant, checked by the device",
                   lambda: _command(owner, device_id, device, RENTER, "turn_on", next(counter))[0] == 200, 20,
                   owner.hub.log)

        paid = None
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:  # draw power and pay for it as it is metered
            signed, answer = pay(owner, called, contract, channel, TERMS)
            if answer[1]["ok"]:
                paid = signed
            else:  # the meter has not moved since the last cheque: nothing new to pay
                assert answer[1]["reason"] == "not_rising" and paid is not None, answer
                assert signed.statement.amount == paid.statement.amount
            if paid.statement.call_amount >= 1 * RUFF:
                break
            time.sleep(0.5)
        assert paid is not None and paid.statement.call_amount >= 1 * RUFF
        evidence = latest_receipt(owner, called).statement
        assert evidence.signer == device and evidence.entity == "energy"  # signed by the plug itself

        plug.proc.kill()  # the device is gone: its meter with it
        plug.proc.wait(5)
        readings = []
        for _ in range(4):
            time.sleep(0.8)
            status, body = owner.hub.request("GET", f"/api/market/calls/{called.hex()}/receipt", auth=False)
            if status == 200:
                signed, answer = pay(owner, called, contract, channel, TERMS)
                readings.append(signed.statement.reading)
                if answer[1]["ok"]:
                    paid = signed
            else:
                assert status in (409, 503), (status, body)  # no reading now: named, never a 500
        assert len(set(readings[-2:])) <= 1, readings  # usage stopped with the device

        renter = Renter(tmp_path, owner)
        renter.cli("market", "end", called.hex(), "--key", str(renter.key_file), "--wait", "30", *renter.chain_args)
        wait_until("the return", lambda: chain.truth.value("call", called)[STATUS] == "returned", 30, owner.hub.log)
        truth = chain.truth
        charged = paid.statement.call_amount
        assert truth.value("call", called)[7] == charged  # used: what the last receipt's cheque covers
        assert truth.balance(OWNER) == FUNDS - truth.fees(OWNER) + charged
        left = (lambda c: c[2] - c[3])(truth.value("chan", channel))
        assert truth.balance(RENTER) + left == FUNDS - truth.fees(RENTER) - charged
        held, supply = truth.supply_holds()
        assert held == supply
    finally:
        owner.hub.stop()

"""``POST /api/market/cheques`` on a real ``hub run``: no token, each cheque answered with its
reason, a batch in one request, size limits, and what was accepted survives a kill -9."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from hub.crypto.keys import PrivateKey
from hub.crypto.statements import Cheque, Receipt, receipt_hash, sign
from tests.hubproc import HubProcess
from tests.identity.kit import network_of

ROUTE = "/api/market/cheques"
PLUGINS = Path(__file__).parent / "chequeplug"
RENTER = PrivateKey(b"\x61" * 32)
DEVICE = PrivateKey(b"\x62" * 32)
CHANNEL, CONTRACT, CALL = b"\x71" * 32, b"\x72" * 32, b"\x73" * 32


class Renter:
    def __init__(self, net):
        self.net = net
        self.receipts = []

    def receipt(self, reading: int, price: int) -> dict:
        st = Receipt(self.net.chain_id, DEVICE.public_key, CALL, "energy", reading, reading, DEVICE.public_key)
        entry = {"hash": receipt_hash(st).hex(), "call": CALL.hex(), "price": price}
        self.receipts.append(entry)
        return entry

    def cheque(self, amount: int, receipt: dict, **fields) -> dict:
        body = dict(chain=self.net.chain_id, channel=CHANNEL, contract=CONTRACT, call=CALL,
                    receipt=bytes.fromhex(receipt["hash"]), amount=amount, call_amount=amount,
                    renter=RENTER.public_key)
        body.update(fields)
        return sign(Cheque(**body), RENTER, self.net).to_json()


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    data = tmp_path_factory.mktemp("cheques") / "data"
    first = HubProcess(data).start()  # makes the embedded chain's genesis
    first.stop()
    renter = Renter(network_of(data))
    receipts = [renter.receipt(100 * i, 10 * i) for i in range(1, 200)]
    (data / "cheque-fixture.json").write_text(json.dumps({
        "channels": [{"id": CHANNEL.hex(), "renter": RENTER.public_key.hex(), "deposit": 5000}],
        "calls": [{"id": CALL.hex(), "channel": CHANNEL.hex(), "contract": CONTRACT.hex(),
                   "renter": RENTER.public_key.hex()}],
        "receipts": receipts,
    }))
    proc = HubProcess(data, plugins_dir=PLUGINS).start()
    proc.wait_for(lambda: (data / "cheque-fixture.noted").exists(), what="the fixture noted")
    try:
        yield proc, renter, receipts
    finally:
        proc.stop()


def test_cheques_need_no_token_and_refusals_carry_their_reason(hub):
    proc, renter, receipts = hub
    status, answer = proc.request("POST", ROUTE, renter.cheque(10, receipts[0]), auth=False)
    assert status == 200 and answer["ok"] and answer["amount"] == 10
    assert proc.request("POST", ROUTE, renter.cheque(5, receipts[0]), auth=False) == (409, {
        "ok": False, "reason": "not_rising",
        "message": "cheque.amount: 5 is not above 10, the latest cheque kept for this channel"})
    status, answer = proc.request("POST", ROUTE, renter.cheque(9999, receipts[1]), auth=False)
    assert (status, answer["reason"]) == (409, "above_deposit")
    status, answer = proc.request("POST", ROUTE, renter.cheque(19, receipts[1]), auth=False)
    assert (status, answer["reason"]) == (409, "underpaid")
    status, answer = proc.request("POST", ROUTE, renter.cheque(30, receipts[1], channel=os.urandom(32)), auth=False)
    assert (status, answer["reason"]) == (404, "unknown_channel")
    forged = renter.cheque(30, receipts[1])
    forged["body"]["amount"] = 31
    status, answer = proc.request("POST", ROUTE, forged, auth=False)
    assert (status, answer["reason"]) == (403, "forged")
    status, answer = proc.request("POST", ROUTE, {"kind": "cheque", "body": {}, "sig": "00"}, auth=False)
    assert (status, answer["reason"]) == (422, "malformed")


def test_a_batch_is_answered_cheque_by_cheque(hub):
    proc, renter, receipts = hub
    batch = [renter.cheque(100 + 10 * i, receipts[i]) for i in range(10, 60)]
    batch.insert(5, renter.cheque(1, receipts[0]))  # an older one in the middle
    status, answers = proc.request("POST", ROUTE, batch, auth=False)
    assert status == 200 and len(answers) == 51
    assert [a["ok"] for a in answers].count(False) == 1 and answers[5]["reason"] == "not_rising"


def test_a_batch_over_the_limits_is_a_4xx(hub):
    proc, renter, receipts = hub
    status, answer = proc.request("POST", ROUTE, [renter.cheque(1, receipts[0])] * 101, auth=False)
    assert status == 422 and "1 to 100" in answer["message"]
    assert proc.request("POST", ROUTE, [], auth=False)[0] == 422
    status, answer = proc.request("POST", ROUTE, raw=b"[" + b" " * 200_000 + b"]", auth=False)
    assert status == 413


def test_accepted_cheques_survive_kill_9(hub, tmp_path):
    proc, renter, receipts = hub
    status, answer = proc.request("POST", ROUTE, renter.cheque(1910, receipts[190]), auth=False)
    assert status == 200 and answer["ok"], answer
    proc.kill()
    proc.start()
    status, answer = proc.request("POST", ROUTE, renter.cheque(1900, receipts[189]), auth=False)
    assert (status, answer["reason"]) == (409, "not_rising")
    assert "1910" in answer["message"]

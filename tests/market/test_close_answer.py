"""A renter who closes its channel alone with an older cheque is answered with the newer one:
by the owner's own hub on the embedded chain, and, while the owner's hub is stopped, by a full
node of a devnet the hub handed its latest cheque to. Balances checked to the unit."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request

from hub.crypto.address import address_of, encode_address
import pytest

from tests.market.e2e.kit import (FUNDS, METERED_TIME, OWNER, RENTER, RUFF, STRANGER, Devnet, Embedded, Owner, call,
                                  cheque, create_contract, fate_of, latest_receipt, market_call, wait_until)


@pytest.fixture
def embedded(tmp_path):
    """The owner's ``hub run`` with its embedded chain (200 ms slots), the plug bound on chain."""
    owner = Owner(tmp_path / "owner", Embedded(tmp_path / "owner")).start()
    try:
        owner.bind_on_chain()
        yield owner
    finally:
        owner.hub.stop()


def _two_cheques(owner, chain):
    """A metered call paid twice; the second cheque is higher. Returns (channel, first, second)."""
    contract = create_contract(chain, METERED_TIME)
    called = call(chain, contract, 5 * RUFF)
    channel = chain.truth.value("call", called)[3]
    wait_until("the hub to open the call", lambda: market_call(owner, called)[0] == 200, 20, owner.hub.log)
    time.sleep(0.6)
    first, answer = _pay(owner, called, contract, channel)
    assert answer[0] == 200 and answer[1]["ok"], answer
    time.sleep(1.1)
    second, answer = _pay(owner, called, contract, channel)
    assert answer[0] == 200 and answer[1]["ok"], answer
    assert second.statement.amount > first.statement.amount
    return channel, first, second


def _pay(owner, called: bytes, contract: bytes, channel: bytes):
    """The renter pays the hub's latest receipt at the terms' price (what `hub market rent` does)."""
    from hub.crypto.statements import receipt_hash
    from hub.market.terms import Terms

    receipt = latest_receipt(owner, called)
    cost = Terms.from_payload(METERED_TIME).cost(receipt.statement.reading)
    signed = cheque(owner.chain.genesis, channel=channel, contract=contract, call=called,
                    receipt=receipt_hash(receipt.statement), amount=cost, call_amount=cost)
    return signed, owner.hub.request("POST", "/api/market/cheques", signed.to_json(), auth=False)


def test_the_hub_answers_a_close_with_an_older_cheque(embedded):
    owner, chain = embedded, embedded.chain
    truth = chain.truth
    channel, first, second = _two_cheques(owner, chain)
    closed_by = fate_of(chain, RENTER, "settle", {"channel": channel, "cheque": first.to_body(), "close": True})
    assert closed_by == "included"
    paid_out = wait_until("the hub's answer paying the channel out", lambda: (v := truth.value("chan", channel))
                          and v[7] and v, 20, owner.hub.log)
    amount = second.statement.amount
    assert paid_out[3] == amount  # the payee got the newer cheque's amount, not the older one's
    assert truth.balance(RENTER) == FUNDS - amount - truth.fees(RENTER)
    assert truth.balance(OWNER) == FUNDS + amount - truth.fees(OWNER)
    status = owner.hub.get("/api/plugins/cheques/status")
    assert status["down"] is None and status["channels"] >= 1
    assert [a["channel"] for a in status["answered"]] == [channel.hex()]
    assert status["answered"][0]["amount"] == amount and status["answered"][0]["closing"] == first.statement.amount
    # The channel is closing: the hub takes no more cheques on it.
    status, answer = owner.hub.request("POST", "/api/market/cheques", second.to_json(), auth=False)
    assert answer.get("duplicate") or answer.get("reason") == "channel_closing", answer
    assert "Traceback" not in owner.hub.log()


def _get(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=5) as resp:
        return json.loads(resp.read())


def test_a_devnet_node_answers_for_an_offline_owner(tmp_path):
    chain = Devnet(tmp_path / "devnet").start()
    owner = None
    try:
        owner = Owner(tmp_path / "owner", chain, extra=f"market:\n  watchers: [{chain.url}]\n").start()
        owner.bind_on_chain()
        truth = chain.truth
        watch_address = _get(chain.url + "/watch")["address"]
        fund = fate_of(chain, STRANGER, "transfer", {"to": _decode(watch_address), "amount": RUFF, "memo": b""})
        assert fund == "included"
        channel, first, second = _two_cheques(owner, chain)
        amount = second.statement.amount
        wait_until("the hub to hand its latest cheque to the node",
                   lambda: any(a for a in [_get(chain.url + "/watch")] if a["watched"] >= 1)
                   and _watched_amount(chain, channel) == amount, 20, owner.hub.log)
        assert "Nothing new to hand over" in owner.cli("market", "watch", "--rpc", chain.url)
        # What anyone may post to a node's /watch is bounded and checked against the chain.
        assert _post(chain.url, first.to_json())[1]["error"] == "not_rising"
        forged = second.to_json()
        forged["body"]["amount"] += 1
        assert _post(chain.url, forged)[:2] == (403, {"error": "forged", "message": forged_message()})
        stranger_channel = cheque(chain.genesis, channel=b"\x01" * 32, contract=b"\x02" * 32, call=b"\x03" * 32,
                                  amount=1, call_amount=1)
        assert _post(chain.url, stranger_channel.to_json())[:2][0] == 404
        assert _post(chain.url, {"kind": "cheque", "body": {}, "sig": "00"})[0] == 422
        assert _post(chain.url, {"pad": "x" * 5000})[0] == 413
        owner.hub.stop()  # the owner's hub is away for the whole challenge

        assert fate_of(chain, RENTER, "settle", {"channel": channel, "cheque": first.to_body(),
                                                  "close": True}) == "included"
        answered = wait_until("the node's answer", lambda: (v := truth.value("chan", channel)) and v[4] == amount
                              and v, 20, chain.log)
        assert answered[5] and not answered[7]  # still in its challenge, now standing at the newer amount
        wait_until("the challenge to end", lambda: chain.get("/head")["timestamp"] > answered[5], 20)
        assert fate_of(chain, STRANGER, "refund", {"target": channel}) == "included"  # anyone pays it out
        paid = truth.value("chan", channel)
        assert paid[7] and paid[3] == amount
        assert truth.balance(OWNER) == FUNDS + amount - truth.fees(OWNER)
        assert truth.balance(RENTER) == FUNDS - amount - truth.fees(RENTER)
    finally:
        if owner is not None:
            owner.hub.stop()
        chain.stop()


def _decode(text: str) -> bytes:
    from hub.crypto.address import decode_address

    return decode_address(text)


def _watched_amount(chain, channel: bytes) -> int | None:
    """What the node keeps for the channel, read from its own watch.db (the node's record)."""
    import sqlite3

    db = chain.root / "n0" / "watch.db"
    if not db.exists():
        return None
    conn = sqlite3.connect(db)
    try:
        row = conn.execute("SELECT amount FROM watched WHERE channel = ?", (channel,)).fetchone()
        return row[0] if row else None
    finally:
        conn.close()


def forged_message() -> str:
    return "sig: not the channel's renter's signature over this cheque on this chain"


def _post(url: str, body) -> tuple[int, dict]:
    req = urllib.request.Request(url + "/watch", data=json.dumps(body).encode(), method="POST",
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


def test_a_close_made_while_the_hub_was_killed_is_answered_after_it_restarts(embedded):
    """kill -9 of the owner's hub (and so of its embedded chain); the renter's close waits in the
    chain's inbox and lands once the hub is back: the kept cheque survived and answers it."""
    owner, chain = embedded, embedded.chain
    truth = chain.truth
    channel, first, second = _two_cheques(owner, chain)
    owner.hub.kill()
    closing = chain.submit(RENTER, "settle", {"channel": channel, "cheque": first.to_body(), "close": True})
    owner.start()
    assert chain.fate(closing) in (None, "included")
    paid_out = wait_until("the answer after the restart", lambda: (v := truth.value("chan", channel)) and v[7] and v,
                          30, owner.hub.log)
    amount = second.statement.amount
    assert truth.included(closing) is not None and paid_out[3] == amount
    assert truth.balance(OWNER) == FUNDS + amount - truth.fees(OWNER)
    assert truth.balance(RENTER) == FUNDS - amount - truth.fees(RENTER)

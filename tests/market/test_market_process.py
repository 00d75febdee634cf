"""The owner's side of a rental against a real ``hub run`` with its embedded chain.

The demo plug is keyless and bound to the hub's own key (the chain's funded producer key). The
owner offers it with a ``create_contract`` (queued the way ``hub chain send`` queues it); a renter
(another funded key) calls it. The hub must open a grant for exactly the paid commands and window,
accept the renter's signed commands in it and refuse them after it, and answer with a ``return``
that pays the owner what the terms say, to the unit, once, also across a kill -9.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

from hub.chain.node.files import read_key
from hub.chain.protocol.genesis import load_genesis
from hub.crypto.address import address_of, encode_address
from hub.crypto.keys import PrivateKey
from hub.crypto.statements import Command, sign
from tests.hubproc import DEMO, HubProcess
from tests.identity.kit import PLUG, PLUG_KEY
from tests.identity.test_chainctl_process import USER, Inbox, _bind_locally, _counter, _genesis

RENTER = USER  # funded in the genesis
TIP = PrivateKey(b"\x71" * 32)  # the owner's rules pay it
PRICE, WINDOW = 100, 3_000


def _command(net, signer: PrivateKey, name: str, entity: str = "outlet") -> dict:
    st = Command(net.chain_id, PLUG_KEY.public_key, entity, name, {}, int(time.time() * 1000), _counter(),
                 signer.public_key)
    return sign(st, signer, net).to_json()


def _final(hub: HubProcess, tx: bytes, what: str, timeout: float = 20) -> None:
    hub.wait_for(lambda: (r := hub.request("GET", f"/api/plugins/chain/tx/{tx.hex()}"))[0] == 200 and r[1]["final"],
                 timeout, what=what)


def _balance(inbox: Inbox, key: PrivateKey) -> int:
    found = inbox.store.state_value("acct", address_of(key.public_key))
    return found[0] if found else 0


def _market_rows(data: Path, sql: str) -> list[tuple]:
    conn = sqlite3.connect(f"file:{data / 'market' / 'market.db'}?mode=ro", uri=True)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def test_prepaid_rental_grants_the_paid_window_and_the_return_pays_the_owner_once(tmp_path):
    data = tmp_path / "data"
    chain_dir = data / "chain"
    _genesis(chain_dir, 200)
    owner_key = chain_dir / "keys" / "producer-0.key"
    owner = read_key(owner_key)
    (data / "configuration.yaml").write_text(
        f"hub: {{commit_interval: 0.1}}\nchain:\nidentity:\n  key: {owner_key}\nmarket:\n  poll: 0.1\n{DEMO}")
    net = load_genesis(chain_dir / "genesis.json").network
    binding = _bind_locally(data, net, owner)
    # The owner's rules: a tip to a third key when the plug is rented, another when the hub is paid.
    (data / "automations.yaml").write_text(f"""
- id: tip_on_call
  trigger: [{{trigger: chain, event: contract_called, device: "{PLUG}"}}]
  action: [{{chain_tx: {{type: transfer, to: "{TIP.public_key.hex()}", amount: 7}}}}]
- id: tip_on_payment
  trigger: [{{trigger: chain, event: payment_received}}]
  action: [{{chain_tx: {{type: transfer, to: "{encode_address(address_of(TIP.public_key))}", amount: 11}}}}]
""")
    hub = HubProcess(data).start()
    inbox = Inbox(chain_dir)
    url = f"/api/devices/{PLUG}/signed-commands"
    try:
        assert {p["name"]: p for p in hub.get("/api/plugins")}["market"]["status"] == "running"
        _final(hub, inbox.send(RENTER, "bind_device", {"statement": binding.to_body()}), "the binding")
        offer = inbox.send(owner, "create_contract", {
            "device": PLUG_KEY.public_key, "commands": ["outlet.turn_on", "outlet.turn_off"],
            "terms": {"kind": "prepaid", "price": PRICE, "window": WINDOW, "max_duration": 2 * WINDOW},
            "endpoint": hub.url})
        _final(hub, offer, "the offer")
        hub.wait_for(lambda: _market_rows(data, "SELECT status FROM contracts") == [("live",)], what="the contract live")

        # Not yet a renter: refused.
        assert hub.request("POST", url, _command(net, RENTER, "turn_on"), auth=False)[0] == 403
        before = _balance(inbox, RENTER)
        call = inbox.send(RENTER, "call", {"contract": offer, "deposit": 250})  # 2 windows (max_duration caps)
        _final(hub, call, "the call")
        opened = time.monotonic()
        hub.wait_for(lambda: hub.request("POST", url, _command(net, RENTER, "turn_on"), auth=False)[0] == 200,
                     what="the renter's command accepted under the grant")
        assert hub.get("/api/states/switch.smart_plug")["value"] == "on"
        # Only the paid commands: the plug's other entities stay the owner's.
        status, answer = hub.request("POST", url, _command(net, RENTER, "turn_on", entity="usb"), auth=False)
        assert status in (403, 404), answer

        # The owner's rule tipped on the call (a rule's chain_tx is not resent after a kill -9, so
        # its block comes first).
        hub.wait_for(lambda: _balance(inbox, TIP) == 7, 10, what="the rule's transfer on the call")
        # The hub dies mid-rental and comes back: the grant is still there, nothing is charged twice.
        hub.kill()
        hub.start()
        if time.monotonic() - opened < 2 * WINDOW / 1000 - 1:
            assert hub.request("POST", url, _command(net, RENTER, "turn_off"), auth=False)[0] == 200

        # After the paid window: refused by the light node (the grant's own end), and returned.
        hub.wait_for(lambda: inbox.store.state_value("call", call) is not None
                     and inbox.store.state_value("call", call)[6] == "returned", 30, what="the return on chain")
        status, answer = hub.request("POST", url, _command(net, RENTER, "turn_on"), auth=False)
        assert status == 403 and answer["reason"] == "not_granted", answer
        entry = inbox.store.state_value("call", call)
        assert entry[7] == 2 * PRICE  # both windows ran: price × ceil(elapsed / window)
        fee = hub.get(f"/api/plugins/chain/tx/{call.hex()}")["fee"]
        assert before - _balance(inbox, RENTER) == 2 * PRICE + fee  # 250 in escrow, 50 back, and the call's fee
        hub.wait_for(lambda: _market_rows(data, "SELECT kind, amount FROM payments") == [("return", 2 * PRICE)],
                     what="the payment booked once")
        rows = _market_rows(data, "SELECT state, used, end_reason FROM calls")
        assert rows == [("returned", 2 * PRICE, "window_closed")], rows
        # The rules fired once each: the call (7) and the payment (11).
        hub.wait_for(lambda: _balance(inbox, TIP) == 18, 20, what="the rules' transfers")
        hub.kill()
        hub.start()  # a restart books nothing again, sends no second return, fires no rule again
        time.sleep(1.0)
        assert _market_rows(data, "SELECT kind, amount FROM payments") == [("return", 2 * PRICE)]
        assert _balance(inbox, TIP) == 18
        assert "Traceback" not in hub.log()
    finally:
        inbox.close()
        hub.stop()


RATE = 1_000_000  # base units per kWh: 1,000 per Wh


def test_metered_rental_bills_the_energy_the_receipts_show_and_the_cheques_pay(tmp_path):
    """A metered rental of the demo plug's energy: receipts from the hub (its light node), the
    renter's rising cheques against them, a kill -9 of the hub mid-rental, the renter's end, and a
    return that pays the owner exactly the renter's last cheque."""
    from hub.crypto.statements import Cheque, Receipt, Signed, receipt_hash

    data = tmp_path / "data"
    chain_dir = data / "chain"
    _genesis(chain_dir, 200)
    owner_key = chain_dir / "keys" / "producer-0.key"
    owner = read_key(owner_key)
    (data / "configuration.yaml").write_text(
        f"hub: {{commit_interval: 0.1}}\nchain:\nidentity:\n  key: {owner_key}\n"
        f"market: {{poll: 0.1, receipt_interval: 0.5, cheque_grace: 0.5, pay_timeout: 60, settle_threshold: 1}}\n"
        f"{DEMO}")
    net = load_genesis(chain_dir / "genesis.json").network
    binding = _bind_locally(data, net, owner)
    hub = HubProcess(data).start()
    inbox = Inbox(chain_dir)
    url = f"/api/devices/{PLUG}/signed-commands"
    try:
        _final(hub, inbox.send(RENTER, "bind_device", {"statement": binding.to_body()}), "the binding")
        offer = inbox.send(owner, "create_contract", {
            "device": PLUG_KEY.public_key, "commands": ["outlet.turn_on", "outlet.turn_off"],
            "terms": {"kind": "metered", "rate": RATE, "meter": "energy", "deposit": 10_000, "max_duration": 60_000},
            "endpoint": hub.url})
        _final(hub, offer, "the offer")
        call = inbox.send(RENTER, "call", {"contract": offer, "deposit": 500_000})
        _final(hub, call, "the call")
        view = f"/api/market/calls/{call.hex()}"
        hub.wait_for(lambda: hub.request("GET", view, auth=False)[0] == 200, what="the hub serving the call")
        status = hub.request("GET", view, auth=False)[1]
        assert status["state"] == "open" and status["kind"] == "metered"
        channel = bytes.fromhex(status["channel"])
        assert hub.request("POST", url, _command(net, RENTER, "turn_on"), auth=False)[0] == 200

        paid = [0]

        def pay() -> dict:
            """What `hub market rent` does each tick: a fresh receipt, priced, paid by a cheque."""
            receipt = Signed.from_json(hub.request("GET", f"{view}/receipt", auth=False)[1])
            st = receipt.statement
            assert isinstance(st, Receipt) and st.call == call and st.entity == "energy"
            assert receipt.verify(owner.public_key, net)  # the hub signs for the keyless plug
            start = hub.request("GET", view, auth=False)[1]["start_reading"]
            cost = RATE * (st.reading - start) // 1000
            if cost <= paid[0]:
                return {"ok": True, "unchanged": True}
            cheque = sign(Cheque(net.chain_id, channel, offer, call, receipt_hash(st), cost, cost, RENTER.public_key),
                          RENTER, net)
            answer = hub.request("POST", "/api/market/cheques", cheque.to_json(), auth=False)[1]
            assert answer["ok"], answer
            paid[0] = cost
            return answer

        for _ in range(3):
            time.sleep(0.7)
            pay()
        hub.kill()
        hub.start()
        assert hub.request("POST", url, _command(net, RENTER, "turn_on"), auth=False)[0] == 200  # still granted
        for _ in range(3):
            time.sleep(0.7)
            pay()
        assert paid[0] > 0
        # An older cheque now is refused (the book kept the newer one across the kill -9).
        older = sign(Cheque(net.chain_id, channel, offer, call, b"\x00" * 32, 1, 1, RENTER.public_key), RENTER, net)
        assert hub.request("POST", "/api/market/cheques", older.to_json(), auth=False)[0] in (404, 409)

        end = sign(Command(net.chain_id, PLUG_KEY.public_key, "market", "end", {"call": call.hex()},
                           int(time.time() * 1000), _counter(), RENTER.public_key), RENTER, net)
        status, answer = hub.request("POST", f"{view}/end", {"signed": end.to_json()}, auth=False)
        assert status == 200 and answer["ended"], answer
        status, answer = hub.request("POST", url, _command(net, RENTER, "turn_off"), auth=False)
        assert status == 403 and answer["reason"] == "not_granted", answer  # access closed at the end

        hub.wait_for(lambda: (inbox.store.state_value("call", call) or [None] * 7)[6] == "returned", 30,
                     what="the return on chain")
        entry = inbox.store.state_value("call", call)
        chan = inbox.store.state_value("chan", channel)
        assert entry[7] == paid[0]  # used: what the last cheque covered, not the final receipt's more
        assert chan[3] == paid[0]  # the owner withdrew exactly the last cheque, in all
        # Withdrawals while the rental ran (settle_threshold), the rest with the return: in all,
        # exactly the last cheque, each transaction booked once.
        hub.wait_for(lambda: sum(a for _, a in _market_rows(data, "SELECT kind, amount FROM payments")) == paid[0],
                     what="the payments booked")
        kinds = [k for k, _ in _market_rows(data, "SELECT kind, amount FROM payments ORDER BY time")]
        assert "settle" in kinds and set(kinds) <= {"settle", "return"}, kinds
        assert "Traceback" not in hub.log()
    finally:
        inbox.close()
        hub.stop()


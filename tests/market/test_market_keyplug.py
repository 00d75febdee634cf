"""Renting out a device that holds its own key (the keyplug simulator, a real process) through a
real ``hub run``: the market delivers the grant to the device, the device checks the renter's
commands itself and signs its own meter receipts; the renter's cheques pay those receipts."""

from __future__ import annotations

import sys
import time

from hub.chain.node.files import read_key
from hub.chain.protocol.genesis import load_genesis
from hub.crypto.statements import Bind, Cheque, Command, Receipt, Signed, receipt_hash, sign
from tests.hubproc import REPO, HubProcess
from tests.identity.test_chainctl_process import USER, Inbox, _counter, _genesis
from tests.market.test_market_process import _final

sys.path.insert(0, str(REPO / "drivers" / "lightnode" / "tests"))

from keyplug_proc import Client, KeyPlug  # noqa: E402

RENTER = USER
RATE = 1_000_000  # per kWh: 1,000 per Wh


def test_a_key_holding_device_is_rented_with_its_own_receipts(tmp_path):
    device = KeyPlug(tmp_path / "plug")
    device.folder.mkdir()
    device.start()
    data = tmp_path / "data"
    chain_dir = data / "chain"
    _genesis(chain_dir, 200)
    owner_key = chain_dir / "keys" / "producer-0.key"
    owner = read_key(owner_key)
    (data / "configuration.yaml").write_text(
        f"hub: {{commit_interval: 0.1}}\nchain:\nidentity:\n  key: {owner_key}\n"
        "market: {poll: 0.1, receipt_interval: 0.5, cheque_grace: 0.5}\n"
        "lightnode:\n  ping_interval: 0.5\n  timeout: 2\n  reconnect_max: 0.5\n"
        f"  devices:\n    - {{host: 127.0.0.1, port: {device.port}, name: Kitchen plug}}\n")
    net = load_genesis(chain_dir / "genesis.json").network
    hub = HubProcess(data).start()
    inbox = Inbox(chain_dir)
    device_id = f"lightnode:{device.public_key.hex()}"
    try:
        hub.wait_for(lambda: hub.get("/api/states/switch.kitchen_plug_relay").get("available"), what="the relay")
        bound = sign(Bind(device.public_key, owner.public_key, int(time.time() * 1000)), device.device_key(), net)
        client = Client(device.port)
        assert client.deliver(bound, net)["ok"]  # what `hub device bind` does with the label
        client.close()
        published = inbox.send(RENTER, "bind_device", {"statement": bound.to_body()})
        hub.wait_for(lambda: inbox.store.state_value("dev", device.public_key), 20,
                     what=f"the binding on chain ({inbox.status(published)})")
        offer = inbox.send(owner, "create_contract", {
            "device": device.public_key, "commands": ["relay.turn_on", "relay.turn_off"],
            "terms": {"kind": "metered", "rate": RATE, "meter": "energy", "deposit": 10_000, "max_duration": 60_000},
            "endpoint": hub.url})
        _final(hub, offer, "the offer")
        call = inbox.send(RENTER, "call", {"contract": offer, "deposit": 500_000})
        view = f"/api/market/calls/{call.hex()}"
        hub.wait_for(lambda: hub.request("GET", view, auth=False)[0] == 200, 20, what="the hub serving the call")
        channel = bytes.fromhex(hub.request("GET", view, auth=False)[1]["channel"])

        def relay(name: str) -> tuple[int, dict]:
            st = Command(net.chain_id, device.public_key, "relay", name, {}, int(time.time() * 1000), _counter(),
                         RENTER.public_key)
            return hub.request("POST", f"/api/devices/{device_id}/signed-commands", sign(st, RENTER, net).to_json(),
                               auth=False)

        status, answer = relay("turn_on")  # checked by the device: the market delivered it the grant
        assert status == 200, answer
        paid = 0
        for _ in range(4):
            time.sleep(0.6)
            receipt = Signed.from_json(hub.request("GET", f"{view}/receipt", auth=False)[1])
            st = receipt.statement
            assert isinstance(st, Receipt) and st.signer == device.public_key  # the device's own
            assert receipt.verify(device.public_key, net)
            start = hub.request("GET", view, auth=False)[1]["start_reading"]
            cost = RATE * (st.reading - start) // 1000
            if cost > paid:
                cheque = sign(Cheque(net.chain_id, channel, offer, call, receipt_hash(st), cost, cost,
                                     RENTER.public_key), RENTER, net)
                answer = hub.request("POST", "/api/market/cheques", cheque.to_json(), auth=False)[1]
                assert answer["ok"], answer
                paid = cost
        assert paid > 0
        end = sign(Command(net.chain_id, device.public_key, "market", "end", {"call": call.hex()},
                           int(time.time() * 1000), _counter(), RENTER.public_key), RENTER, net)
        assert hub.request("POST", f"{view}/end", {"signed": end.to_json()}, auth=False)[0] == 200
        status, answer = relay("turn_off")
        assert status == 403 and answer["reason"] == "not_granted", answer  # the device closed it too
        hub.wait_for(lambda: (inbox.store.state_value("call", call) or [None] * 7)[6] == "returned", 30,
                     what="the return on chain")
        assert inbox.store.state_value("call", call)[7] == paid
        assert inbox.store.state_value("chan", channel)[3] == paid
        assert "Traceback" not in hub.log()
    finally:
        inbox.close()
        hub.stop()
        device.stop()

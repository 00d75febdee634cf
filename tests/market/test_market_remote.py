"""The market on a hub that follows a devnet of node processes as a light client (remote mode):
blocks are checked against verified headers, state (channels, calls) read with proofs, returns
sent with ``POST /tx``. A prepaid rental of the demo plug, with a kill -9 of the hub in it."""

from __future__ import annotations

import time

from hub.chain.access import build_tx
from hub.chain.node.files import read_key
from hub.crypto.address import address_of, encode_address
from tests.hubproc import DEMO, HubProcess
from tests.identity.kit import PLUG, PLUG_KEY
from tests.identity.test_chainctl_process import USER, Devnet, _bind_locally
from tests.market.test_market_process import _command, _market_rows

RENTER = USER
PRICE, WINDOW = 100, 4_000


def test_a_hub_following_a_devnet_serves_a_prepaid_call_and_is_paid_once(tmp_path):
    devnet = Devnet(tmp_path)
    g = tmp_path / "g"
    owner = read_key(g / "keys" / "producer-0.key")
    net = devnet.genesis.network
    data = tmp_path / "hub-data"
    data.mkdir()
    (data / "configuration.yaml").write_text(
        f"hub: {{commit_interval: 0.1}}\nchain:\n  rpc: {devnet.a}\n  genesis: {g / 'genesis.json'}\n"
        f"identity:\n  key: {g / 'keys' / 'producer-0.key'}\nmarket: {{poll: 0.1}}\n{DEMO}")
    binding = _bind_locally(data, net, owner)
    nonces: dict[bytes, int] = {}

    def send(key, tx_type: str, payload: dict) -> bytes:
        account = devnet.get(devnet.b, f"/accounts/{encode_address(address_of(key.public_key))}") or {}
        nonces[key.public_key] = max(nonces.get(key.public_key, 0), int(account.get("next_nonce", 1)) - 1) + 1
        return devnet.post_tx(build_tx(key, net, devnet.genesis.rules(), tx_type, payload, nonces[key.public_key],
                                       int(time.time() * 1000)).raw)

    def balance(key) -> int:
        return int((devnet.get(devnet.a, f"/accounts/{encode_address(address_of(key.public_key))}") or {})
                   .get("balance", 0))

    hub = HubProcess(data)
    url = f"/api/devices/{PLUG}/signed-commands"
    try:
        deadline = time.monotonic() + 20
        while not all(devnet.get(u, "/head") for u in devnet.urls):
            assert time.monotonic() < deadline, devnet.logs()
            time.sleep(0.1)
        hub.start()
        hub.wait_for(lambda: hub.get("/api/plugins/chain/head")["connected"], 20, what="the light client")
        devnet.in_block(send(RENTER, "bind_device", {"statement": binding.to_body()}))
        offer = send(owner, "create_contract", {
            "device": PLUG_KEY.public_key, "commands": ["outlet.turn_on", "outlet.turn_off"],
            "terms": {"kind": "prepaid", "price": PRICE, "window": WINDOW, "max_duration": WINDOW}, "endpoint": ""})
        devnet.in_block(offer)
        hub.wait_for(lambda: _market_rows(data, "SELECT status FROM contracts") == [("live",)], 30,
                     what="the contract live (final, followed remotely)")
        before = balance(RENTER)
        call = send(RENTER, "call", {"contract": offer, "deposit": 3 * PRICE})  # one window (max_duration)
        devnet.in_block(call)
        hub.wait_for(lambda: hub.request("POST", url, _command(net, RENTER, "turn_on"), auth=False)[0] == 200, 30,
                     what="the renter's command under the grant")
        hub.kill()
        hub.start()
        hub.wait_for(lambda: _market_rows(data, "SELECT state FROM calls") == [("returned",)], 40,
                     what="the return final on chain, seen remotely")
        assert _market_rows(data, "SELECT kind, amount FROM payments") == [("return", PRICE)]
        status, answer = hub.request("POST", url, _command(net, RENTER, "turn_off"), auth=False)
        assert status == 403 and answer["reason"] == "not_granted", answer
        fee = int(devnet.get(devnet.a, f"/tx/{call.hex()}")["fee"])
        hub.wait_for(lambda: before - balance(RENTER) == PRICE + fee, 20, what="the renter's balance settled")
        assert "Traceback" not in hub.log()
    finally:
        devnet.close()
        hub.stop()

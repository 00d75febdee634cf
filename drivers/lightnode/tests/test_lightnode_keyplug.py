"""The key-holding device by itself, a real process: it verifies every statement, keeps what it
must in its flash across kill -9, and answers each refusal with its reason. No hub is needed for
any of this, which is the point: a hub that is down or lying cannot make the device obey."""

from __future__ import annotations

import hmac
import json
import os
import stat
import time

import pytest

from hub.crypto import keys
from hub.crypto.signing import Network
from hub.crypto.statements import Bind, Grant, Handover, Revoke, Signed, sign

from keyplug_proc import NETWORK, Client, KeyPlug, command


@pytest.fixture
def plug(tmp_path):
    started: list[KeyPlug] = []

    def start(*args: str, folder=None) -> KeyPlug:
        device = KeyPlug(folder or tmp_path, *args).start()
        started.append(device)
        return device

    yield start
    for device in started:
        device.stop()


def now_ms() -> int:
    return int(time.time() * 1000)


def bind(client: Client, device: KeyPlug, controller: keys.PrivateKey) -> Signed:
    signed = sign(Bind(device.public_key, controller.public_key, now_ms()), device.device_key(), NETWORK)
    answer = client.deliver(signed)
    assert answer["ok"], answer
    return signed


def test_hello_states_and_a_bound_controllers_command(plug):
    device = plug()
    client = Client(device.port)
    assert client.hello["device"] == device.public_key
    assert {e["key"]: e["capability"] for e in client.hello["entities"]} == {
        "relay": "switch", "power": "sensor", "energy": "meter"}
    owner = keys.PrivateKey.generate()
    refused = client.deliver(command(device.public_key, owner, "turn_on", 1))
    assert (refused["ok"], refused["reason"]) == (False, "unbound")

    bind(client, device, owner)
    answer = client.deliver(command(device.public_key, owner, "turn_on", 1))
    assert answer == {"t": "answer", "id": answer["id"], "ok": True, "result": {"relay": "on"}}
    client.wait_push(lambda m: m.get("entity") == "power" and m["value"] == 1500.0)


def test_the_device_refuses_with_its_reason(plug):
    device = plug()
    client = Client(device.port)
    owner, stranger = keys.PrivateKey.generate(), keys.PrivateKey.generate()
    bind(client, device, owner)
    other_device = keys.PrivateKey.generate().public_key

    cases = {
        "not_authorised": command(device.public_key, stranger, "turn_on", 1),
        "stale": command(device.public_key, owner, "turn_on", 2, issued_at=now_ms() - 120_000),
        "wrong_device": command(other_device, owner, "turn_on", 3),
    }
    forged = command(device.public_key, owner, "turn_on", 4)
    cases["forged"] = Signed(forged.statement, bytes(64))
    for reason, signed in cases.items():
        answer = client.deliver(signed)
        assert (answer["ok"], answer["reason"]) == (False, reason), answer
    # Signed for another chain: the device names the chain, whatever the hub claims.
    other = Network("ruff-other", bytes(32))
    answer = client.deliver(command(device.public_key, owner, "turn_on", 5, network=other), other)
    assert answer["reason"] == "wrong_chain"
    # Nothing above spent the owner's counter: counter 1 still works, then never again.
    assert client.deliver(command(device.public_key, owner, "turn_on", 1))["ok"]
    assert client.deliver(command(device.public_key, owner, "turn_off", 1))["reason"] == "replayed"
    # A command the plug does not have is refused before it spends a counter.
    answer = client.deliver(command(device.public_key, owner, "turn_on", 2, entity="energy"))
    assert answer["reason"] == "malformed" and "relay" in answer["message"]


def test_a_replay_is_refused_after_kill_9_of_the_device(plug, tmp_path):
    device = plug()
    owner = keys.PrivateKey.generate()
    client = Client(device.port)
    bind(client, device, owner)
    accepted = command(device.public_key, owner, "turn_on", 7)
    assert client.deliver(accepted)["ok"]
    device.kill()  # right after its answer: the counter must already be in flash

    again = plug()
    assert again.public_key == device.public_key  # the same seed, from flash
    client = Client(again.port)
    assert client.deliver(accepted)["reason"] == "replayed"
    assert client.deliver(command(device.public_key, owner, "turn_off", 8))["ok"]
    assert stat.S_IMODE(os.stat(device.flash).st_mode) == 0o600


def test_the_seed_never_leaves_the_process(plug):
    device = plug("--strong")
    client = Client(device.port)
    seed = json.loads(device.flash.read_text())["seed"]
    assert device.label().startswith(f"ruff-device:1:pk:{device.public_key.hex()}:")
    assert seed not in "\n".join(device.lines)
    assert bytes.fromhex(seed) not in repr(client.hello).encode()


def test_the_reset_button_clears_control_and_tells_the_hubs(plug):
    device = plug()
    owner = keys.PrivateKey.generate()
    client = Client(device.port)
    old_binding = bind(client, device, owner)
    assert client.deliver(command(device.public_key, owner, "turn_on", 1))["ok"]

    device.press_reset()
    reset = client.wait_push(lambda m: m["t"] == "reset")
    signed = Signed.from_body(reset["statement"])
    assert signed.statement.device == device.public_key and signed.verify(device.public_key, NETWORK)
    assert client.deliver(command(device.public_key, owner, "turn_off", 2))["reason"] == "unbound"
    # The old binding cannot be replayed to take the plug back; a new one (later time) binds it.
    assert client.deliver(old_binding)["reason"] == "already_bound"
    new_owner = keys.PrivateKey.generate()
    bind(client, device, new_owner)
    assert client.deliver(command(device.public_key, owner, "turn_off", 3))["reason"] == "not_authorised"
    assert client.deliver(command(device.public_key, new_owner, "turn_off", 1))["ok"]


def test_strong_binding_needs_the_right_setup_code_and_never_the_private_key(plug):
    device = plug("--strong")
    client = Client(device.port)
    controller, nonce = keys.PrivateKey.generate().public_key, os.urandom(32)

    def prove(code: str) -> dict:
        mac = hmac.new(code.encode(), controller + nonce, "sha256").digest()
        return client.ask({"t": "prove", "controller": controller, "nonce": nonce, "code_mac": mac})

    wrong = prove("0000000000")
    assert (wrong["ok"], wrong["reason"]) == (False, "bad_setup_code")
    answer = prove(device.setup_code())
    assert answer["ok"], answer
    proof = Signed.from_body(answer["result"])
    assert proof.statement.DOMAIN == "bind-proof" and proof.statement.nonce == nonce
    assert proof.verify(device.public_key, NETWORK)
    # One-time: the code is spent until the reset button.
    assert prove(device.setup_code())["reason"] == "already_bound"
    device.press_reset()
    client.wait_push(lambda m: m["t"] == "reset")
    assert prove(device.setup_code())["ok"]


def test_a_revoked_share_is_refused_by_the_device_while_no_hub_is_up(plug, tmp_path):
    device = plug()
    owner, admin = keys.PrivateKey.generate(), keys.PrivateKey.generate()
    client = Client(device.port)
    bind(client, device, owner)
    grant = Grant(device.public_key, owner.public_key, admin.public_key, ["*"], 0, 0, 0, "share")
    assert client.deliver(sign(grant, owner, NETWORK))["ok"]
    assert client.deliver(command(device.public_key, admin, "turn_on", 1))["ok"]
    assert client.deliver(sign(Revoke(device.public_key, owner.public_key, 1), owner, NETWORK))["ok"]
    client.close()
    device.kill()  # the revocation's epoch is in flash: no hub, no chain needed to keep it

    again = plug()
    client = Client(again.port)
    assert client.deliver(command(device.public_key, admin, "turn_off", 2))["reason"] == "not_authorised"
    # A grant of the old epoch, delivered again, is void too.
    assert client.deliver(sign(grant, owner, NETWORK))["reason"] == "not_authorised"


def test_a_handover_moves_control_once(plug):
    device = plug()
    seller, buyer = keys.PrivateKey.generate(), keys.PrivateKey.generate()
    client = Client(device.port)
    bind(client, device, seller)
    handover = sign(Handover(device.public_key, seller.public_key, buyer.public_key, 1), seller, NETWORK)
    assert client.deliver(handover)["ok"]
    assert client.deliver(handover)["ok"] is False
    assert client.deliver(command(device.public_key, seller, "turn_on", 1))["reason"] == "not_authorised"
    assert client.deliver(command(device.public_key, buyer, "turn_on", 1))["ok"]


def test_a_bound_device_keeps_its_chain(plug):
    device = plug()
    client = Client(device.port)
    bind(client, device, keys.PrivateKey.generate())
    other = Network("ruff-test", bytes(32))  # same id, another genesis: another network
    intruder = keys.PrivateKey.generate()
    answer = client.deliver(sign(Bind(device.public_key, intruder.public_key, now_ms()), device.device_key(), other),
                            other)
    assert answer["reason"] == "wrong_chain"


def assert_closed(client: Client) -> None:
    with pytest.raises((ConnectionError, OSError)):
        while True:  # the states it pushed before it noticed, then the end
            client.read()


def test_frames_over_the_limit_or_malformed_end_the_connection_not_the_device(plug):
    device = plug()
    client = Client(device.port)
    client.sock.sendall((1 << 20).to_bytes(4, "big"))  # announces a megabyte
    assert_closed(client)
    client = Client(device.port)
    answer = client.ask({"t": "deliver", "signed": {"kind": "command", "body": {}, "sig": b""}})
    assert answer["reason"] == "malformed" and "sig" in answer["message"]
    client.send({"t": "hello", "v": 1})  # not a request a hub sends, and malformed: dropped
    assert_closed(client)
    assert Client(device.port).hello["device"] == device.public_key  # still serving


def test_at_most_four_hubs_at_once(plug):
    device = plug()
    clients = [Client(device.port) for _ in range(4)]
    fifth = Client(device.port)
    assert fifth.hello["t"] == "busy"
    clients[0].close()
    deadline = time.monotonic() + 5  # the device frees the slot once its read of the closed one fails
    while (hello := Client(device.port).hello)["t"] == "busy" and time.monotonic() < deadline:
        time.sleep(0.05)
    assert hello["t"] == "hello"


def test_the_energy_meter_rises_while_on_and_never_runs_backwards_across_kill_9(plug, tmp_path):
    device = plug("--tick", "0.05")
    owner = keys.PrivateKey.generate()
    client = Client(device.port)
    bind(client, device, owner)
    assert client.deliver(command(device.public_key, owner, "turn_on", 1))["ok"]
    first = client.wait_push(lambda m: m.get("entity") == "energy" and m["value"] > 0)["value"]
    later = client.wait_push(lambda m: m.get("entity") == "energy" and m["value"] > first)["value"]
    device.kill()  # while on: every reading a hub saw was in flash before it was sent

    again = plug()
    client = Client(again.port)
    states = {m["entity"]: m["value"] for m in (client.read() for _ in range(3))}
    assert states["relay"] == "on" and states["power"] == 1500.0
    assert states["energy"] >= later  # a meter never runs backwards


def test_the_device_shows_it_holds_the_key_its_hello_claims(plug):
    from hub.crypto.keys import verify

    from hub_lightnode.protocol import auth_bytes

    device = plug()
    client = Client(device.port)
    nonce = os.urandom(32)
    signature = client.ask({"t": "auth", "nonce": nonce})["result"]
    assert verify(device.public_key, auth_bytes(nonce, device.public_key), signature)
    assert not verify(device.public_key, auth_bytes(os.urandom(32), device.public_key), signature)


@pytest.mark.parametrize("content, error", [
    ("not json", "damaged flash"),
    ('{"version": 1, "seed": "zz"}', "damaged flash: no valid seed"),
    ('{"version": 9, "seed": "00"}', "flash version 9, this firmware reads 1"),
])
def test_a_damaged_flash_is_named_not_replaced(tmp_path, content, error):
    import subprocess
    import sys

    from keyplug_proc import KEYPLUG

    flash = tmp_path / "flash.json"
    flash.write_text(content)
    done = subprocess.run([sys.executable, str(KEYPLUG), "--flash", str(flash), "--port", "1"],
                          capture_output=True, text=True, timeout=30)
    assert done.returncode == 1 and f"{flash}: " in done.stderr and error in done.stderr, done.stderr
    assert flash.read_text() == content  # its key may still be recovered from it: never overwritten


def test_two_binders_with_the_right_code_at_once_bind_it_once(plug):
    device = plug("--strong")
    guesser, first, second = Client(device.port), Client(device.port), Client(device.port)

    def ask(client: Client, code: str) -> None:
        controller, nonce = keys.PrivateKey.generate().public_key, os.urandom(32)
        mac = hmac.new(code.encode(), controller + nonce, "sha256").digest()
        client.send({"t": "prove", "id": 1, "controller": controller, "nonce": nonce, "code_mac": mac,
                     "chain": NETWORK.chain_id, "genesis": NETWORK.genesis_hash})

    def answer(client: Client) -> dict:
        return next(m for m in iter(client.read, None) if m["t"] == "answer")

    ask(guesser, "0000000000")  # a wrong guess holds the device's code check for its pause ...
    time.sleep(0.2)  # (only so that it is read first; the pause it starts is 0.5 s)
    ask(first, device.setup_code())  # ... while two right ones queue behind it
    ask(second, device.setup_code())
    assert answer(guesser)["reason"] in ("bad_setup_code", "already_bound")
    answers = [answer(first), answer(second)]
    assert sorted(a["ok"] for a in answers) == [False, True]
    assert next(a for a in answers if not a["ok"])["reason"] == "already_bound"


def test_the_device_signs_its_own_meter_receipts_only_for_a_call_it_granted(plug):
    """The market's metering of a key-holding device (issue #17): the device reads its own meter
    and signs the receipt with its own key, and only for a rental it holds a grant for."""
    from hub.crypto.statements import Receipt

    device = plug()
    client = Client(device.port)
    owner, renter = keys.PrivateKey.generate(), keys.PrivateKey.generate()
    bind(client, device, owner)
    call = b"\x42" * 32
    asked = {"t": "receipt", "call": call, "entity": "energy", "since": now_ms() - 5_000}
    refused = client.ask(asked)
    assert (refused["ok"], refused["reason"]) == (False, "not_granted"), refused
    grant = sign(Grant(device.public_key, owner.public_key, renter.public_key, ("relay.turn_on",), now_ms() - 1_000,
                       now_ms() + 60_000, 0, f"call:{call.hex()}"), owner, NETWORK)
    assert client.deliver(grant)["ok"]
    for entity, low in (("energy", 0), ("time", 5_000)):
        answer = client.ask({**asked, "entity": entity})
        assert answer["ok"], answer
        receipt = Signed.from_body(answer["result"])
        st = receipt.statement
        assert isinstance(st, Receipt) and (st.device, st.signer, st.call, st.entity) == (
            device.public_key, device.public_key, call, entity)
        assert st.reading >= low and receipt.verify(device.public_key, NETWORK)
    other = keys.PrivateKey.generate()
    wrong_chain = client.ask({**asked, "entity": "energy"}, Network("elsewhere", other.public_key))
    assert (wrong_chain["ok"], wrong_chain["reason"]) == (False, "wrong_chain")

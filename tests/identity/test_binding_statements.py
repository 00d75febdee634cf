"""The statements the ownership flows build, checked by the same light node a device runs: a label's
binding binds, a strong proof is believed only for this device, controller and nonce, and a reset
signed with the label clears the controller."""

from __future__ import annotations

import hashlib

import pytest

from hub.crypto.keys import PrivateKey
from hub.crypto.signing import Network
from hub.crypto.statements import BindProof, Signed, sign
from hub.identity import binding, labels
from hub.identity.errors import Reason, Refused
from hub.identity.lightnode import LightNode, MemoryFlash

NET = Network("ruff-test", hashlib.sha256(b"genesis").digest())
OTHER_NET = Network("ruff-test", hashlib.sha256(b"another genesis").digest())


def test_label_binding_is_accepted_by_the_light_node_and_survives_the_wire():
    label, _ = labels.make()
    controller = PrivateKey.generate().public_key
    signed = binding.sign_bind(label, controller, 1_000, NET)
    node = LightNode(label.public_key, NET, MemoryFlash())
    node.bind(Signed.from_json(signed.to_json()))  # what the CLI sends is what the hub checks
    assert node.controller == controller
    reset = binding.sign_reset(label, 2_000, NET)
    assert reset.verify(label.public_key, NET)
    node.reset(reset.statement.time)
    assert node.controller is None
    with pytest.raises(Refused) as info:  # the old binding cannot take the device back
        node.bind(signed)
    assert info.value.reason is Reason.ALREADY_BOUND


def test_binding_for_another_chain_is_forged_here():
    label, _ = labels.make()
    signed = binding.sign_bind(label, b"c" * 32, 1_000, OTHER_NET)
    with pytest.raises(Refused) as info:
        LightNode(label.public_key, NET, MemoryFlash()).bind(signed)
    assert info.value.reason is Reason.FORGED


def test_strong_label_cannot_sign():
    _, text = labels.make(strong=True)
    with pytest.raises(labels.LabelError):
        binding.sign_bind(labels.parse(text), b"c" * 32, 1, NET)


def _proof(key: PrivateKey, controller: bytes, nonce: bytes, device: bytes | None = None) -> Signed:
    return sign(BindProof(device=device or key.public_key, controller=controller, nonce=nonce, time=5), key, NET)


def test_check_proof():
    device, controller, nonce = PrivateKey.generate(), b"c" * 32, binding.new_nonce()
    good = _proof(device, controller, nonce)
    assert binding.check_proof(good, device.public_key, controller, nonce, NET) is good
    cases = [
        (_proof(device, controller, b"x" * 32), Reason.REPLAYED),  # an old proof, another nonce
        (_proof(device, b"d" * 32, nonce), Reason.REPLAYED),  # for another controller
        (_proof(PrivateKey.generate(), controller, nonce, device.public_key), Reason.FORGED),  # not the label's key
        (binding.sign_reset(labels.make()[0], 1, NET), Reason.MALFORMED),
        (_proof(PrivateKey.generate(), controller, nonce), Reason.WRONG_DEVICE),
    ]
    for proof, reason in cases:
        with pytest.raises(Refused) as info:
            binding.check_proof(proof, device.public_key, controller, nonce, NET)
        assert info.value.reason is reason


def test_chain_payload_carries_the_statement():
    label, _ = labels.make()
    signed = binding.sign_bind(label, b"c" * 32, 7, NET)
    payload = binding.chain_payload(signed)
    assert Signed.from_body(payload["statement"]) == signed


@pytest.mark.parametrize(("given", "expected"), [
    (None, ("*",)), ([], ("*",)), (["relay.turn_on", "relay.turn_on", " relay.turn_off"], ("relay.turn_off", "relay.turn_on")),
])
def test_parse_commands(given, expected):
    assert binding.parse_commands(given) == expected


@pytest.mark.parametrize("bad", [["relay"], ["relay."], [".on"], ["a.b.c"]])
def test_parse_commands_names_the_bad_one(bad):
    with pytest.raises(binding.BindingError, match="ENTITY.COMMAND") as info:
        binding.parse_commands(bad)
    assert info.value.status == 422


def test_parse_public_key():
    assert binding.parse_public_key("ab" * 32) == b"\xab" * 32
    for bad in ("zz", "ab" * 31):
        with pytest.raises(binding.BindingError) as info:
            binding.parse_public_key(bad, "--to")
        assert info.value.message.startswith("--to:") and info.value.status == 422

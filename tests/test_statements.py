"""Signed device statements: one byte layout, bound to a network and a kind."""

import pytest

from hub.crypto import keys
from hub.crypto import statements as st
from hub.crypto.signing import Network

NET = Network("ruff-test", b"\x01" * 32)
OTHER = Network("ruff-test", b"\x02" * 32)
KEY = keys.PrivateKey(b"\x07" * 32)
DEVICE = b"\xdd" * 32


def command(**change):
    fields = dict(chain="ruff-test", device=DEVICE, entity="relay", command="turn_on", args={},
                  issued_at=1_000, counter=1, signer=KEY.public_key)
    return st.Command(**{**fields, **change})


def test_a_signed_command_round_trips_through_cbor_and_json_and_verifies():
    signed = st.sign(command(args={"brightness": 128, "colour": [1, 2, 3]}), KEY, NET)
    for again in (st.Signed.from_body(signed.to_body()), st.Signed.from_json(signed.to_json())):
        assert again == signed
        assert again.verify(again.signer(), NET)


def test_a_signature_is_bound_to_the_genesis_and_to_the_kind_of_statement():
    signed = st.sign(command(), KEY, NET)
    assert not signed.verify(KEY.public_key, OTHER)  # same chain id, another genesis
    # The same field values under another kind: a grant signature is not a command signature.
    grant = st.Grant(DEVICE, KEY.public_key, KEY.public_key, ["relay.turn_on"], 0, 0, 0, "share")
    assert not grant.verify(KEY.public_key, signed.signature, NET)


@pytest.mark.parametrize(("change", "field"), [
    ({"device": b"short"}, "command.device"),
    ({"counter": -1}, "command.counter"),
    ({"counter": True}, "command.counter"),
    ({"entity": ""}, "command.entity"),
    ({"args": {"x": float("nan")}}, "command.args.x"),
    ({"args": {"x": "y" * 2000}}, "command.args"),
    ({"args": {"a": {"b": {"c": {"d": {"e": {"f": 1}}}}}}}, "command.args"),
])
def test_a_malformed_statement_is_refused_with_its_field_named(change, field):
    body = {**command().body(), **change}
    with pytest.raises(st.StatementError, match=field.replace(".", r"\.")):
        st.Command.from_body(body)


def test_unknown_fields_and_kinds_are_refused():
    with pytest.raises(st.StatementError, match="unknown field"):
        st.Command.from_body({**command().body(), "extra": 1})
    with pytest.raises(st.StatementError, match="kind"):
        st.Signed.from_body({"kind": "launch", "body": {}, "sig": b"\0" * 64})


def test_a_grant_lists_its_commands_sorted_once_and_allows_them_only_in_its_window():
    grant = st.Grant(DEVICE, KEY.public_key, b"\xee" * 32, ["relay.turn_on", "relay.turn_off", "relay.turn_on"],
                     not_before=100, not_after=200, epoch=0, ref="contract:ab")
    assert grant.commands == ("relay.turn_off", "relay.turn_on")
    assert grant.allows("relay", "turn_on", 150)
    assert not grant.allows("relay", "toggle", 150)
    assert not grant.allows("relay", "turn_on", 99) and not grant.allows("relay", "turn_on", 201)
    admin = st.Grant(DEVICE, KEY.public_key, b"\xee" * 32, [st.WILDCARD], 0, 0, 0, "share")
    assert admin.allows("anything", "at_all", 10**12)


RENTER = keys.PrivateKey(b"\x09" * 32)


def cheque(**change):
    fields = dict(chain="ruff-test", channel=b"\xc1" * 32, contract=b"\xc2" * 32, call=b"\xc3" * 32,
                  receipt=b"\xc4" * 32, amount=500, call_amount=200, renter=RENTER.public_key)
    return st.Cheque(**{**fields, **change})


def test_market_statements_round_trip_and_verify_under_their_own_kind():
    receipt = st.Receipt("ruff-test", DEVICE, b"\xc3" * 32, "energy", reading=1_250, time=5_000,
                         signer=KEY.public_key)
    consent = st.ReviewConsent("ruff-test", b"\xc2" * 32, b"\xc3" * 32, DEVICE, KEY.public_key)
    for statement, key in ((cheque(), RENTER), (receipt, KEY), (consent, KEY)):
        signed = st.sign(statement, key, NET)
        for again in (st.Signed.from_body(signed.to_body()), st.Signed.from_json(signed.to_json())):
            assert again == signed
            assert again.signer() == key.public_key and again.verify(again.signer(), NET)
        assert not signed.verify(key.public_key, OTHER)


def test_a_cheque_signature_binds_channel_contract_and_chain():
    signed = st.sign(cheque(), RENTER, NET)
    for change in ({"channel": b"\xd1" * 32}, {"contract": b"\xd2" * 32}, {"chain": "ruff-other"},
                   {"amount": 501}, {"receipt": b"\xd4" * 32}):
        assert not cheque(**change).verify(RENTER.public_key, signed.signature, NET), change


def test_a_cheque_whose_call_amount_exceeds_its_channel_amount_is_refused():
    with pytest.raises(st.StatementError, match=r"cheque\.call_amount"):
        st.Cheque.from_body(cheque(amount=100, call_amount=101).body())
    with pytest.raises(st.StatementError, match=r"cheque\.amount"):
        st.Cheque.from_body({**cheque().body(), "amount": -1})


def test_a_receipt_hash_covers_its_body_not_its_signature():
    receipt = st.Receipt("ruff-test", DEVICE, b"\xc3" * 32, "energy", 10, 5, KEY.public_key)
    assert len(st.receipt_hash(receipt)) == 32
    assert st.receipt_hash(receipt) != st.receipt_hash(st.Receipt("ruff-test", DEVICE, b"\xc3" * 32, "energy",
                                                                  11, 5, KEY.public_key))

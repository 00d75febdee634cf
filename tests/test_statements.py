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

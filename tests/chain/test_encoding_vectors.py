"""Byte vectors for the consensus encoding: what the strict decoder refuses and accepts, and golden
canonical encodings that must never change (a different cbor2 or a changed encoder would fork
nodes running different versions; these fail first). cbor2 is pinned to one version for that."""

from __future__ import annotations

import hashlib
import re
import tomllib
from importlib.metadata import version
from pathlib import Path

import pytest

from hub.chain.protocol.tx import Transaction
from hub.crypto.encoding import DecodeError, decode, encode

ROOT = Path(__file__).resolve().parents[2]

#: Tagged items (major type 6): every one is refused, including those cbor2 decodes by itself.
TAGGED = {
    "c249010000000000000000": "tag 2",  # bignum 2**64: re-encodes to the same bytes, once accepted
    "c349010000000000000000": "tag 3",  # negative bignum -(2**64) - 1
    "c2420100": "tag 2",  # a bignum that fits in 64 bits
    "a1616181c240": "tag 2",  # a bignum inside a map inside a list
    "c074323031332d30332d32315432303a30343a30305a": "tag 0",  # date/time string
    "c11a514b67b0": "tag 1",  # epoch date/time
    "c48221196ab3": "tag 4",  # decimal fraction
    "c5822003": "tag 5",  # bigfloat
    "c6187b": "tag 6",  # unassigned
    "d8184100": "tag 24",  # embedded CBOR
    "d81c80": "tag 28",  # shareable value
    "d81d00": "tag 29",  # shared reference
    "d8208160": "tag 32",  # URI
    "d90100a0": "tag 256",  # string reference namespace
    "d90102820102": "tag 258",  # set
    "d9d9f700": "tag 55799",  # self-described CBOR
    "da0001000000": "tag 65536",
    "db000000010000000000": "tag 4294967296",
}

#: Other defects: non-canonical widths, indefinite lengths, order, duplicates, trailing bytes.
MALFORMED = [
    "1817",  # 23 in two bytes
    "190017",  # 23 in three bytes
    "5f4100ff",  # indefinite byte string
    "9f00ff",  # indefinite array
    "a2616201616101",  # keys out of order
    "a2616101616102",  # duplicate key
    "0000",  # trailing byte
    "a10102",  # integer map key
    "f7",  # undefined
    "e0",  # simple value 0
    "",
]

#: Accepted as they are: the largest unsigned and the smallest negative 64-bit integers, no tag.
ACCEPTED = {
    "00": 0,
    "17": 23,
    "1818": 24,
    "1bffffffffffffffff": 2**64 - 1,
    "3bffffffffffffffff": -(2**64),
    "f5": True,
    "f6": None,
    "40": b"",
    "60": "",
    "80": [],
    "a0": {},
    "a2616101616202": {"a": 1, "b": 2},
}


@pytest.mark.parametrize("hexed", sorted(TAGGED))
def test_every_tag_is_refused_and_the_message_names_it(hexed):
    with pytest.raises(DecodeError) as info:
        decode(bytes.fromhex(hexed))
    assert str(info.value) == f"CBOR {TAGGED[hexed]} is not allowed"


@pytest.mark.parametrize("hexed", MALFORMED)
def test_non_canonical_forms_are_refused(hexed):
    with pytest.raises(DecodeError):
        decode(bytes.fromhex(hexed))


@pytest.mark.parametrize("hexed", sorted(ACCEPTED))
def test_canonical_untagged_values_are_accepted(hexed):
    assert decode(bytes.fromhex(hexed)) == ACCEPTED[hexed]
    assert encode(ACCEPTED[hexed]).hex() == hexed


def test_a_transaction_carrying_a_bignum_is_bad_encoding():
    from hub.chain.protocol.errors import Reason, TxRejected

    tx = bytes.fromhex(GOLDEN_TX)
    # the nonce 7 (0x07) written as the bignum 7 (tag 2, one-byte string): the same number, another encoding
    forged = tx.replace(bytes.fromhex("656e6f6e636507"), bytes.fromhex("656e6f6e6365c24107"))
    with pytest.raises(TxRejected) as info:
        Transaction.from_bytes(forged)
    assert info.value.reason is Reason.BAD_ENCODING and "tag 2" in str(info.value)


# --- golden encodings: hex that must not change ------------------------------------------------------

GOLDEN_TX = (
    "a763666565190c1c637369675840000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f2021222324"
    "25262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f6474797065687472616e73666572656e6f6e6365076673656e"
    "6465725820fa81fc83de9023649c61b6d805da448ac6bd56776d1501f033c5faa6a8095412677061796c6f6164a362746f5400"
    "0102030405060708090a0b0c0d0e0f10111213646d656d6f46676f6c64656e66616d6f756e741a0016e3606b76616c69645f75"
    "6e74696c1b0000018bcfe56800")
GOLDEN_TX_HASH = "f2bf8e3cf0ad6ff00a0225a9e9f7bc6706d2bb76e67994aacfab79746f7e786b"
GOLDEN_HEADER = (
    "aa637369675840050505050505050505050505050505050505050505050505050505050505050505050505050505050505050505"
    "0505050505050505050505050505050505050564736c6f7419162e65726f756e640c666865696768741904d26774785f726f6f74"
    "5820020202020202020202020202020202020202020202020202020202020202020268636861696e5f69646b727566662d646576"
    "6e65746870726f64756365725820040404040404040404040404040404040404040404040404040404040404040469707265765f"
    "68617368582001010101010101010101010101010101010101010101010101010101010101016974696d657374616d701b000001"
    "8bcfe62f9e6a73746174655f6861736858200303030303030303030303030303030303030303030303030303030303030303")
GOLDEN_STATE = (
    "8483646163637454000102030405060708090a0b0c0d0e0f10111213821a3b8b87c003836463616e6454000102030405060708"
    "090a0b0c0d0e0f101112138365616c6963655820040404040404040404040404040404040404040404040404040404040404040411"
    "83646d65746166737570706c791b00038d7ea4c680008364766f746554000102030405060708090a0b0c0d0e0f10111213f6")


def test_golden_transaction_encoding():
    """A transfer's wire bytes and hash (the signature is fixed bytes: this pins the encoding, not signing)."""
    sender = hashlib.sha256(b"golden sender").digest()
    tx = Transaction("transfer", sender, 7, 3_100, 1_700_000_000_000,
                     {"to": bytes(range(20)), "amount": 1_500_000, "memo": b"golden"}, bytes(range(64)))
    assert tx.raw.hex() == GOLDEN_TX
    assert tx.hash.hex() == GOLDEN_TX_HASH
    again = Transaction.from_bytes(bytes.fromhex(GOLDEN_TX))
    assert (again.nonce, again.fee, again.payload["amount"], again.hash.hex()) == (7, 3_100, 1_500_000, GOLDEN_TX_HASH)


def test_golden_header_map_encoding():
    """A header-shaped map (every field of this issue's header; keys sorted by length, then bytes)."""
    header = {"chain_id": "ruff-devnet", "height": 1234, "round": 12, "slot": 5678, "timestamp": 1_700_000_051_102,
              "prev_hash": bytes([1]) * 32, "tx_root": bytes([2]) * 32, "state_hash": bytes([3]) * 32,
              "producer": bytes([4]) * 32, "sig": bytes([5]) * 64}
    assert encode(header).hex() == GOLDEN_HEADER
    assert decode(bytes.fromhex(GOLDEN_HEADER)) == header


def test_golden_state_records_encoding():
    """State changes as the state hash encodes them: ``[namespace, key, value or null]``."""
    address = bytes(range(20))
    changes = [["acct", address, [999_000_000, 3]], ["cand", address, ["alice", bytes([4]) * 32, 17]],
               ["meta", "supply", 10**15], ["vote", address, None]]
    assert encode(changes).hex() == GOLDEN_STATE
    assert decode(bytes.fromhex(GOLDEN_STATE)) == changes


def test_the_installed_cbor2_is_the_pinned_one():
    """pyproject.toml pins cbor2 exactly; a venv with another version may encode differently."""
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    pin = next(d for d in deps if re.match(r"cbor2\b", d))
    assert re.fullmatch(r"cbor2==[0-9.]+", pin), f"cbor2 must be pinned to one version, not {pin!r}"
    assert version("cbor2") == pin.split("==")[1]

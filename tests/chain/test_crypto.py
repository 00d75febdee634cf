"""Addresses, Merkle proofs, deterministic encoding and signing domains."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hub.crypto import merkle
from hub.crypto.address import AddressError, address_of, decode_address, encode_address
from hub.crypto.encoding import DecodeError, decode, encode
from hub.crypto.keys import PrivateKey, verify
from hub.crypto.signing import Network, signing_bytes

from tests.chain.chainkit import key

# --- addresses -------------------------------------------------------------------------------------


def test_address_round_trip_and_shape():
    k = key("alice")
    text = encode_address(address_of(k.public_key))
    assert text.startswith("ruff1") and len(text) == 5 + 32 + 6
    assert decode_address(text) == address_of(k.public_key)
    assert decode_address(text.upper()) == address_of(k.public_key)
    assert address_of(k.public_key) == hashlib.sha256(k.public_key).digest()[:20]


def test_every_single_mistyped_character_is_caught():
    text = encode_address(address_of(key("bob").public_key))
    charset = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"
    for i in range(5, len(text)):
        for ch in charset:
            if ch != text[i]:
                typo = text[:i] + ch + text[i + 1:]
                with pytest.raises(AddressError, match="checksum"):
                    decode_address(typo)


@pytest.mark.parametrize(("text", "message"), [
    ("bc1qxyz", "starts with ruff1"),
    ("ruff1qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqbqqqqqq", "cannot appear"),  # 'b' is not in the alphabet
    ("Ruff1qqq", "mixed"),
    ("ruff1qq", "too short"),
])
def test_bad_addresses_say_what_is_wrong(text, message):
    with pytest.raises(AddressError, match=message):
        decode_address(text)


# --- Merkle (RFC 6962) ------------------------------------------------------------------------------


def _reference_root(leaves: list[bytes]) -> bytes:
    """RFC 6962 §2.1 as written: split at the largest power of two smaller than n."""
    if not leaves:
        return hashlib.sha256(b"").digest()
    if len(leaves) == 1:
        return hashlib.sha256(b"\x00" + leaves[0]).digest()
    k = 1 << ((len(leaves) - 1).bit_length() - 1)
    return hashlib.sha256(b"\x01" + _reference_root(leaves[:k]) + _reference_root(leaves[k:])).digest()


def test_rfc6962_known_answer():
    # The empty tree and one-leaf tree from RFC 6962's definition, and Certificate Transparency's
    # published root for its 8 test leaves (merkle_tree_test.cc).
    assert merkle.root([]).hex() == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    leaves = [bytes.fromhex(x) for x in ("", "00", "10", "2021", "3031", "40414243", "5051525354555657",
                                         "606162636465666768696a6b6c6d6e6f")]
    assert merkle.root(leaves).hex() == "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"


@pytest.mark.parametrize("n", range(0, 20))
def test_root_and_every_proof(n):
    leaves = [f"tx{i}".encode() for i in range(n)]
    root = merkle.root(leaves)
    assert root == _reference_root(leaves)
    for i in range(n):
        proof = merkle.inclusion_proof(leaves, i)
        assert merkle.verify_inclusion(leaves[i], i, n, proof, root)
        assert not merkle.verify_inclusion(b"forged", i, n, proof, root)
        if n > 1:
            assert not merkle.verify_inclusion(leaves[i], (i + 1) % n, n, proof, root)
        if proof:
            bad = [bytes(32)] + proof[1:]
            assert not merkle.verify_inclusion(leaves[i], i, n, bad, root)
            assert not merkle.verify_inclusion(leaves[i], i, n, proof[:-1], root)


def test_a_node_cannot_pass_as_a_leaf():
    leaves = [b"a", b"b", b"c", b"d"]
    inner = merkle.node_hash(merkle.leaf_hash(b"a"), merkle.leaf_hash(b"b"))
    assert merkle.root([inner[:0] + b"\x01" + inner, b"c", b"d"]) != merkle.root(leaves)


# --- encoding ---------------------------------------------------------------------------------------


def test_encoding_is_deterministic_and_decode_insists_on_it():
    assert encode({"b": 1, "a": [1, 2]}) == encode({"a": [1, 2], "b": 1})
    assert decode(encode({"a": 1})) == {"a": 1}
    with pytest.raises(DecodeError, match="deterministic"):
        decode(bytes.fromhex("a2616201616101"))  # {"b":1,"a":1}: keys out of order
    with pytest.raises(DecodeError, match="deterministic"):
        decode(bytes.fromhex("1817"))  # 23 written in two bytes
    with pytest.raises(DecodeError):
        decode(encode(1) + b"\x00")  # trailing byte
    with pytest.raises(DecodeError, match="not allowed"):
        decode(bytes.fromhex("c11a514b67b0"))  # a tagged date
    with pytest.raises(DecodeError, match="text strings"):
        decode(encode({1: 2}))


def test_nesting_counts_containers_not_leaves():
    """The depth limit is a consensus rule: every node must draw the line at the same place."""
    from hub.crypto.encoding import MAX_DEPTH

    def nested(lists, leaf):
        for _ in range(lists):
            leaf = [leaf]
        return leaf

    for leaf in (1, b"x", 1.5):  # a float is a leaf like any scalar
        assert decode(encode(nested(MAX_DEPTH + 1, leaf))) == nested(MAX_DEPTH + 1, leaf)
        with pytest.raises(DecodeError, match="nested deeper"):
            decode(encode(nested(MAX_DEPTH + 2, leaf)))


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_decoding_random_bytes_raises_only_decode_error(data):
    try:
        decode(data)
    except DecodeError:
        pass


# --- signing domains ----------------------------------------------------------------------------------


def test_a_signature_is_bound_to_its_domain_chain_and_genesis():
    k = PrivateKey(bytes(range(32)))
    body = {"x": 1}
    main = Network("mainnet", b"\x01" * 32)
    sig = k.sign(signing_bytes("tx", main, body))
    assert verify(k.public_key, signing_bytes("tx", main, body), sig)
    assert not verify(k.public_key, signing_bytes("tx", Network("testnet", main.genesis_hash), body), sig)
    assert not verify(k.public_key, signing_bytes("tx", Network("mainnet", b"\x02" * 32), body), sig)
    assert not verify(k.public_key, signing_bytes("block", main, body), sig)
    with pytest.raises(TypeError, match="Network"):  # a bare chain id would sign without the genesis
        signing_bytes("tx", "mainnet", body)
    assert "seed" not in repr(k) and k.seed.hex() not in repr(k)

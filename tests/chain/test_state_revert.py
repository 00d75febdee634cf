"""Reverting with an undo record read back from the store (CBOR arrays decode as lists)."""

from hub.chain.protocol.state import State
from hub.crypto.encoding import decode, encode
from tests.chain.chainkit import key, make_genesis


def test_a_stored_undo_record_restores_tuples_so_the_next_block_sees_no_false_change():
    genesis = make_genesis([key("p1"), key("p2")])
    state: State = genesis.state()
    parent = state.head
    addr = b"\x01" * 20
    state.begin()
    state.set("acct", addr, (5, 0))
    state.commit()
    state.begin()
    state.set("acct", addr, (7, 1))
    _, undo = state.commit()
    stored = decode(encode(undo))  # what the node's store hands back: lists all the way down
    assert stored[0][2] == [5, 0]
    state.revert([tuple(u) for u in stored], parent)
    assert state.get("acct", addr) == (5, 0) and isinstance(state.get("acct", addr), tuple)
    state.begin()
    state.set("acct", addr, (5, 0))  # the same value written again
    changes, _ = state.commit()
    assert changes == []

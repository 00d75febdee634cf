"""The hub's cheque checks: what a cheating renter tries is refused with its reason, and what was
accepted survives a restart and a kill -9."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

from hub.crypto.keys import PrivateKey
from hub.crypto.signing import Network
from hub.market.cheques import Call, Channel, ChequeBook

from tests.market.chequekit import NETWORK, rental


def test_rising_cheques_are_kept_and_an_older_one_is_refused(tmp_path):
    r = rental(tmp_path / "market.db")
    assert r.book.accept(r.cheque(10))["ok"]
    assert r.book.accept(r.cheque(25))["ok"]
    older = r.book.accept(r.cheque(20))
    assert older["reason"] == "not_rising"
    same = r.book.accept(r.cheque(25, receipt=r.receipt(26, 0)))  # another cheque, same amount: no rise
    assert same["reason"] == "not_rising"
    assert r.book.latest_for_channel(r.channel).statement.amount == 25
    assert r.book.latest_for_call(r.call).statement.call_amount == 25


def test_the_same_cheque_again_is_answered_as_kept(tmp_path):
    r = rental(tmp_path / "market.db")
    c = r.cheque(10)
    assert r.book.accept(c)["ok"]
    again = r.book.accept(c)
    assert again["ok"] and again["duplicate"]


def test_a_cheque_above_the_deposit_is_refused(tmp_path):
    r = rental(tmp_path / "market.db", deposit=100)
    assert r.book.accept(r.cheque(100))["ok"]
    answer = r.book.accept(r.cheque(101))
    assert answer["reason"] == "above_deposit" and "100" in answer["message"]


def test_wrong_chain_contract_channel_and_renter_are_named(tmp_path):
    r = rental(tmp_path / "market.db")
    other_net = Network("other-chain", bytes(32))
    assert r.book.accept(r.cheque(5, network=other_net))["reason"] == "wrong_chain"
    same_id_other_genesis = Network(NETWORK.chain_id, bytes(32))  # the signature binds the genesis
    assert r.book.accept(r.cheque(5, network=same_id_other_genesis))["reason"] == "forged"
    assert r.book.accept(r.cheque(5, contract=os.urandom(32)))["reason"] == "wrong_contract"
    assert r.book.accept(r.cheque(5, channel=os.urandom(32)))["reason"] == "unknown_channel"
    assert r.book.accept(r.cheque(5, call=os.urandom(32)))["reason"] == "unknown_call"
    stranger = PrivateKey.generate()
    assert r.book.accept(r.cheque(5, renter=stranger.public_key, key=stranger))["reason"] == "wrong_renter"
    assert r.book.accept(r.cheque(5, key=stranger))["reason"] == "forged"
    assert r.book.latest_for_channel(r.channel) is None


def test_a_cheque_of_another_channel_cannot_be_replayed(tmp_path):
    """Two channels to this hub (two renters); a cheque on one cannot pay for the other's call,
    and after a channel closes and reopens (a new id), its old cheques are worthless."""
    r = rental(tmp_path / "market.db")
    other_channel, other_call = os.urandom(32), os.urandom(32)
    r.book.note_channel(other_channel, Channel(r.renter.public_key, 1000))
    r.book.note_call(other_call, Call(other_channel, r.contract, r.renter.public_key))
    first = r.cheque(50)
    assert r.book.accept(first)["ok"]
    # the same call, claimed through the other channel: the renter signs it, the hub refuses it
    assert r.book.accept(r.cheque(60, channel=other_channel))["reason"] == "wrong_channel"
    # the channel closes on chain: no more cheques; reopened under a new id, the old cheque names the old one
    r.book.note_channel(r.channel, Channel(r.renter.public_key, 1000, closing_at=1, closing_amount=0))
    assert r.book.accept(r.cheque(70))["reason"] == "channel_closing"


def test_receipts_must_be_issued_for_the_call_and_paid_for(tmp_path):
    r = rental(tmp_path / "market.db")
    priced = r.receipt(reading=500, price=40)
    assert r.book.accept(r.cheque(39, receipt=priced))["reason"] == "underpaid"
    assert r.book.accept(r.cheque(40, receipt=os.urandom(32)))["reason"] == "unknown_receipt"
    other_call = os.urandom(32)
    r.book.note_call(other_call, Call(r.channel, r.contract, r.renter.public_key))
    elsewhere = r.receipt(reading=1, price=0, call=other_call)
    assert r.book.accept(r.cheque(40, receipt=elsewhere))["reason"] == "unknown_receipt"
    assert r.book.accept(r.cheque(40, receipt=priced))["ok"]
    beyond = r.receipt(reading=900, price=5000)  # usage priced above the deposit (1000)
    assert r.book.accept(r.cheque(999, receipt=beyond))["reason"] == "underpaid"
    assert r.book.accept(r.cheque(1000, receipt=beyond))["ok"]  # the whole deposit: all it can pay


def test_call_amounts_must_be_covered_by_the_channel_amount(tmp_path):
    """Two calls on one channel: each cheque's channel amount must rise by at least its call's rise."""
    r = rental(tmp_path / "market.db")
    second = os.urandom(32)
    r.book.note_call(second, Call(r.channel, r.contract, r.renter.public_key))
    assert r.book.accept(r.cheque(30, 30))["ok"]
    assert r.book.accept(r.cheque(50, 20, call=second, receipt=r.receipt(1, 0, call=second)))["ok"]
    # call 1 rises by 25 but the channel only by 10: inconsistent
    assert r.book.accept(r.cheque(60, 55))["reason"] == "inconsistent"
    assert r.book.accept(r.cheque(60, 29))["reason"] == "not_rising"
    assert r.book.accept(r.cheque(60, 40))["ok"]
    assert r.book.latest_for_call(second).statement.call_amount == 20
    assert r.book.latest_for_call(r.call).statement.call_amount == 40


def test_a_batch_answers_each_cheque_and_a_malformed_one_is_named(tmp_path):
    r = rental(tmp_path / "market.db")
    bad = r.cheque(20).to_json()
    bad["body"]["amount"] = -1
    answers = r.book.accept_many([r.cheque(10).to_json(), bad, {"kind": "cheque"}, r.cheque(20).to_json()])
    assert [a["ok"] for a in answers] == [True, False, False, True]
    assert "cheque.amount" in answers[1]["message"]
    assert answers[2]["reason"] == "malformed"


def test_kept_cheques_survive_a_restart(tmp_path):
    r = rental(tmp_path / "market.db")
    r.book.accept(r.cheque(10))
    receipt = r.receipt(100, 30)
    r.book.close()
    book = ChequeBook(tmp_path / "market.db", NETWORK)
    assert book.latest_for_channel(r.channel).statement.amount == 10
    r.book = book
    assert book.accept(r.cheque(5))["reason"] == "not_rising"
    assert book.accept(r.cheque(30, receipt=receipt))["ok"]


def test_an_accepted_cheque_survives_kill_9(tmp_path):
    """A process accepts cheques and is killed -9 right after the answer: the cheque is on disk."""
    db = tmp_path / "market.db"
    script = textwrap.dedent(f"""
        import os, signal, sys
        sys.path.insert(0, {str(os.getcwd())!r})
        from pathlib import Path
        from tests.market.chequekit import rental
        r = rental(Path({str(db)!r}))
        for amount in (10, 20, 30):
            assert r.book.accept(r.cheque(amount))["ok"]
        print(r.channel.hex(), flush=True)
        os.kill(os.getpid(), signal.SIGKILL)
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=30)
    assert done.returncode == -signal.SIGKILL, done.stderr
    channel = bytes.fromhex(done.stdout.strip())
    book = ChequeBook(db, NETWORK)
    kept = book.latest_for_channel(channel)
    assert kept.statement.amount == 30 and kept.statement.channel == channel

"""The market's reads (``GET /contracts``, ``/contracts/{id}``, ``/calls/{id}``, ``/channels/{id}``,
``/channels``, ``/reviews/{key}``) on a node's RPC and on the hub's embedded-chain router."""

from __future__ import annotations

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from hub.chain.api import router
from hub.chain.node.node import ChainNode
from hub.chain.node.rpc import create_rpc_app
from hub.chain.protocol.constants import RUFF
from hub.crypto.address import encode_address

from tests.chain.chainkit import GENESIS_TIME, Wallet, addr, bind, key, make_genesis
from tests.chain.marketkit import cheque, first_channel, metered, offer, prepaid, returned

PRODUCER = key("producer0")
ALICE, BOB = key("alice"), key("bob")  # the owner, the renter
PLUG, PILE = key("device-plug"), key("device-pile")
NOW = GENESIS_TIME + 10_000
PREFIXES = ["", "/api/plugins/chain"]


@pytest.fixture(scope="module")
def market(tmp_path_factory):
    g = make_genesis([PRODUCER], {ALICE: 100 * RUFF, BOB: 100 * RUFF})
    n = ChainNode(tmp_path_factory.mktemp("market") / "chain", g, PRODUCER)
    alice, bob = Wallet(ALICE, g), Wallet(BOB, g)
    slot = 0

    def block(*txs):
        nonlocal slot
        for tx in txs:
            n.submit(tx.raw, NOW)
        slot += 1
        n.produce(GENESIS_TIME + 500 * slot)
        return [tx.hash for tx in txs]

    block(alice.tx("bind_device", bind(PLUG, ALICE.public_key, GENESIS_TIME, g)),
          alice.tx("bind_device", bind(PILE, ALICE.public_key, GENESIS_TIME, g)))
    lock, plug, pile = block(alice.tx("create_contract", offer(PLUG.public_key, prepaid(), endpoint="http://127.0.0.1:8123")),
                             alice.tx("create_contract", offer(PLUG.public_key, metered())),
                             alice.tx("create_contract", offer(PILE.public_key, metered(meter="energy"))))
    rental, session = block(bob.tx("call", {"contract": lock, "deposit": 120}), bob.tx("call", {"contract": plug, "deposit": 300}))
    channel = first_channel(BOB, ALICE)
    block(alice.tx("return", returned(ALICE, rental, lock, PLUG.public_key, 50, g)),
          alice.tx("settle", {"channel": channel, "cheque": cheque(BOB, channel, plug, session, 70, g)}))
    block(bob.tx("review", {"call": rental, "comment": "slow"}))
    yield {"node": n, "genesis": g, "lock": lock, "plug": plug, "pile": pile, "rental": rental, "session": session, "channel": channel}
    n.close()


@pytest.fixture(scope="module")
def clients(market):
    app = FastAPI()
    app.include_router(router(market["node"]), prefix="/api/plugins/chain")
    with TestClient(create_rpc_app(market["node"], now=lambda: NOW)) as rpc, TestClient(app) as hub:
        yield {"": rpc, "/api/plugins/chain": hub}


@pytest.mark.parametrize("prefix", PREFIXES)
def test_a_contract_shows_its_terms_liveness_and_review_counts(market, clients, prefix):
    got = clients[prefix].get(f"{prefix}/contracts/{market['lock'].hex()}")
    assert got.status_code == 200, got.text
    shown = got.json()
    assert shown["device"] == PLUG.public_key.hex() and shown["controller_address"] == encode_address(addr(ALICE))
    assert shown["terms"] == {"kind": "prepaid", "price": 50, "window": 60_000, "rate": 0, "meter": "", "interval": 0,
                              "deposit": 0, "max_duration": 180_000}
    assert shown["live"] is True and shown["endpoint"] == "http://127.0.0.1:8123"
    assert shown["reviews"] == {"key": market["lock"].hex(), "returned": 1, "negative": 1, "score": 1.0}
    assert shown["device_reviews"]["returned"] == 1
    assert clients[prefix].get(f"{prefix}/contracts/{'ab' * 32}").status_code == 404
    assert clients[prefix].get(f"{prefix}/contracts/xyz").status_code == 422


@pytest.mark.parametrize("prefix", PREFIXES)
def test_contracts_are_listed_by_device_in_pages(market, clients, prefix):
    client = clients[prefix]
    plug = client.get(f"{prefix}/contracts", params={"device": PLUG.public_key.hex(), "live": "true"}).json()
    assert sorted(c["id"] for c in plug["contracts"]) == sorted([market["lock"].hex(), market["plug"].hex()])
    first = client.get(f"{prefix}/contracts", params={"limit": 2}).json()
    rest = client.get(f"{prefix}/contracts", params={"from": first["more_from"]}).json()
    assert len(first["contracts"]) == 2 and len(rest["contracts"]) == 1 and rest["more_from"] is None
    assert client.get(f"{prefix}/contracts", params={"device": "nope"}).status_code == 422


@pytest.mark.parametrize("prefix", PREFIXES)
def test_calls_and_channels_show_where_the_money_is(market, clients, prefix):
    client = clients[prefix]
    rental = client.get(f"{prefix}/calls/{market['rental'].hex()}").json()
    assert (rental["status"], rental["deposit"], rental["used"], rental["windows"]) == ("returned", 120, 50, 2)
    assert rental["reviewed"] is not None and rental["channel"] is None
    session = client.get(f"{prefix}/calls/{market['session'].hex()}").json()
    assert session["status"] == "open" and session["channel"] == market["channel"].hex()
    assert session["refundable_from"] == session["time"] + 3_600_000 + 3_600_000  # max_duration + REFUND_TIMEOUT
    chan = client.get(f"{prefix}/channels/{market['channel'].hex()}").json()
    assert (chan["status"], chan["deposit"], chan["withdrawn"], chan["remaining"]) == ("open", 300, 70, 230)
    both = client.get(f"{prefix}/channels", params={"renter": BOB.public_key.hex(), "payee": ALICE.public_key.hex()}).json()
    assert both["current"] == market["channel"].hex() and [c["id"] for c in both["channels"]] == [market["channel"].hex()]
    of_payee = client.get(f"{prefix}/channels", params={"payee": ALICE.public_key.hex()}).json()
    assert [c["id"] for c in of_payee["channels"]] == [market["channel"].hex()]
    assert client.get(f"{prefix}/channels").status_code == 422
    assert client.get(f"{prefix}/calls/{'cd' * 32}").status_code == 404


@pytest.mark.parametrize("prefix", PREFIXES)
def test_reviews_are_counted_per_contract_and_per_device(market, clients, prefix):
    client = clients[prefix]
    device = client.get(f"{prefix}/reviews/{PLUG.public_key.hex()}").json()
    assert (device["returned"], device["negative"], device["score"]) == (1, 1, 1.0)
    none = client.get(f"{prefix}/reviews/{PILE.public_key.hex()}").json()
    assert (none["returned"], none["negative"], none["score"]) == (0, 0, None)


def test_the_remote_router_shows_market_records_only_as_proven(market, clients):
    """In remote mode the hub proves each record against headers its light client verified; a node
    lying about a channel's numbers is refused, not shown."""
    import asyncio
    import json

    from hub.chain.api import remote_router

    from tests.chain.test_remote_hub import _remote_over

    remote = _remote_over(clients[""], market["genesis"])
    asyncio.run(remote.sync())
    app = FastAPI()
    app.include_router(remote_router(remote))
    with TestClient(app) as hub:
        contract = hub.get(f"/contracts/{market['lock'].hex()}").json()
        assert contract["verified"] is True and contract["reviews"]["negative"] == 1 and contract["live"] is True
        chan = hub.get(f"/channels/{market['channel'].hex()}").json()
        assert chan["verified"] is True and (chan["deposit"], chan["withdrawn"]) == (300, 70)
        call = hub.get(f"/calls/{market['session'].hex()}").json()
        assert call["verified"] is True and call["status"] == "open"
        assert hub.get(f"/reviews/{PLUG.public_key.hex()}").json()["returned"] == 1
        assert hub.get(f"/calls/{'cd' * 32}").status_code == 404  # absence is proven too
        listed = hub.get("/contracts", params={"device": PILE.public_key.hex()}).json()
        assert listed["verified"] is False and [c["id"] for c in listed["contracts"]] == [market["pile"].hex()]

        real_fetch = remote._fetch
        lies = []

        def lying(path):  # the channel's deposit, 300 (CBOR 19012c), claimed as 301
            body, kind = real_fetch(path)
            if "/state/chan/proof" in path:
                answer = json.loads(body)
                told = [e.replace("19012c", "19012d") for e in answer["proof"]["entries"]]
                lies.append(told != answer["proof"]["entries"])
                answer["proof"]["entries"] = told
                body = json.dumps(answer).encode()
            return body, kind

        remote._fetch = lying
        refused = hub.get(f"/channels/{market['channel'].hex()}")
        assert lies == [True] and refused.status_code == 502 and "301" not in refused.text


def test_hub_chain_contract_prints_a_contract_from_the_chain_directory(market):
    from click.testing import CliRunner

    from hub.chain.cli import chain
    from hub.chain.node.files import GENESIS_FILE

    chain_dir = market["node"].directory
    (chain_dir / GENESIS_FILE).write_text(market["genesis"].to_json())
    runner = CliRunner()
    shown = runner.invoke(chain, ["contract", market["lock"].hex(), "--chain-dir", str(chain_dir)])
    assert shown.exit_code == 0, shown.output
    assert "price=50" in shown.output and "1 negative of 1 returned" in shown.output and "live: yes" in shown.output
    missing = runner.invoke(chain, ["contract", "ab" * 32, "--chain-dir", str(chain_dir)])
    assert missing.exit_code != 0 and "no contract" in missing.output
    assert "64 hex digits" in runner.invoke(chain, ["contract", "xyz", "--chain-dir", str(chain_dir)]).output


def test_market_state_reloaded_from_the_store_is_the_same_state(market, tmp_path):
    """Nested values (a contract's commands and terms) come back from SQLite as the tuples they
    were: same digest, same root, so the next block after a restart records no false change."""
    import shutil

    copy = tmp_path / "chain"
    node = market["node"]
    with node.lock:
        node.store.conn.execute("PRAGMA wal_checkpoint(FULL)")
        shutil.copytree(node.directory, copy)
    again = ChainNode(copy, market["genesis"], PRODUCER)
    try:
        assert again.state.digest() == node.state.digest()
        assert again.state.state_root() == node.state.state_root()
        assert again.state.get("contract", market["lock"]) == node.state.get("contract", market["lock"])
    finally:
        again.close()

"""The hub as a light client (``chain: {rpc:, genesis:}``): a real ``hub chain node`` process and a
real ``hub run`` process following it over HTTP, through a transfer, a kill -9 of the node and its
restart; then the remote view's checks in-process (tampered proofs, another chain, balances)."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import signal
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

from fastapi.testclient import TestClient

from hub.chain.node.files import read_key
from hub.chain.protocol.genesis import load_genesis
from hub.chain.protocol.tx import Transaction
from hub.crypto.address import address_of, encode_address
from hub.crypto.keys import PrivateKey

from hub.chain.devnet_cli import free_ports
from tests.chain.network.test_processes import HUB, _hub
from tests.hubproc import HubProcess, run_cli

BLOCK_MS = 250


class Node:
    """One ``hub chain node`` process (1 producer, 3-block rounds: a schedule proof every 3 blocks),
    restartable on its data directory; killed by its pid at the end."""

    def __init__(self, root: Path) -> None:
        self.root = root
        _hub("chain", "genesis", "--out", "g", "--producers", "1", "--set", f"BLOCK_INTERVAL={BLOCK_MS}",
             "--set", "PRODUCERS=3", cwd=root)
        self.p2p, self.rpc_port = free_ports(2)
        self.url = f"http://127.0.0.1:{self.rpc_port}"
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        with open(self.root / "node.log", "a") as log:
            self.proc = subprocess.Popen(
                [*HUB, "chain", "node", "--genesis", "g/genesis.json", "--data", "n0",
                 "--producer-key", "g/keys/producer-0.key", "--listen", f"127.0.0.1:{self.p2p}",
                 "--rpc", f"127.0.0.1:{self.rpc_port}"],
                cwd=self.root, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                env={**os.environ, "PYTHONUNBUFFERED": "1"})

    def kill9(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(5)

    def close(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.kill9()

    def get(self, path: str):
        try:
            with urllib.request.urlopen(self.url + path, timeout=2) as resp:
                return json.loads(resp.read())
        except (OSError, ValueError):
            return None

    def post_tx(self, raw: bytes) -> dict:
        req = urllib.request.Request(self.url + "/tx", data=json.dumps({"tx": raw.hex()}).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=5) as resp:
            return json.loads(resp.read())

    def log(self) -> str:
        path = self.root / "node.log"
        return path.read_text(errors="replace")[-3000:] if path.exists() else ""


def poll(what: str, check, timeout: float, *logs):
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}\n" + "\n----\n".join(log() for log in logs))
        time.sleep(0.1)


def transfer(root: Path) -> Transaction:
    genesis = load_genesis(root / "g/genesis.json")
    sender = read_key(root / "g/keys/producer-0.key")
    to = address_of(PrivateKey(hashlib.sha256(b"remote-hub-recipient").digest()).public_key)
    payload = {"to": to, "amount": 3_000_000, "memo": b""}
    valid_until = time.time_ns() // 1_000_000 + 3_600_000
    draft = Transaction.create(sender, genesis.network, "transfer", payload, nonce=1, fee=0, valid_until=valid_until)
    fee = genesis.rules().fee_for(draft.size + 9)
    return Transaction.create(sender, genesis.network, "transfer", payload, nonce=1, fee=fee, valid_until=valid_until)


def test_hub_follows_a_node_process_verifies_a_transfer_and_survives_the_node(tmp_path):
    node = Node(tmp_path)
    data = tmp_path / "hub-data"
    data.mkdir()
    (data / "configuration.yaml").write_text(
        f"chain:\n  rpc: {node.url}\n  genesis: {tmp_path / 'g' / 'genesis.json'}\n")
    hub = HubProcess(data)
    node.start()
    try:
        poll("the node's RPC", lambda: node.get("/head"), 20, node.log)
        hub.start()
        head = lambda: hub.get("/api/plugins/chain/head")  # noqa: E731
        first = poll("the hub's light head to follow the node",
                     lambda: (h := head())["connected"] and h["height"] >= 4 and h["final"]["height"] >= 3 and h,
                     20, hub.log, node.log)
        assert first["mode"] == "light" and first["rpc"] == node.url
        assert first["genesis_hash"] == load_genesis(tmp_path / "g/genesis.json").hash.hex()
        at = node.get(f"/blocks/{first['height']}")
        assert at is not None and at["hash"] == first["hash"]  # the same chain, header for header
        assert not (data / "chain").exists()  # remote mode keeps no chain of its own

        # A transfer submitted to the node: the hub reports it verified once it is in a block.
        tx = transfer(tmp_path)
        assert node.post_tx(tx.raw)["hash"] == tx.hash.hex()
        seen = poll("the hub to verify the transfer",
                    lambda: (r := hub.request("GET", f"/api/plugins/chain/tx/{tx.hash.hex()}"))[0] == 200
                    and r[1]["verified"] and r[1], 20, hub.log, node.log)
        assert seen["raw"] == tx.raw.hex() and seen["height"] >= 1 and seen["type"] == "transfer"
        final = poll("the transfer to be final in the hub's view",
                     lambda: (r := hub.get(f"/api/plugins/chain/tx/{tx.hash.hex()}"))["final"] and r, 20, hub.log)
        assert final["height"] <= hub.get("/api/plugins/chain/head")["final"]["height"]
        sender = json.loads((tmp_path / "g/keys/producer-0.key").read_text())["address"]
        account = hub.get(f"/api/plugins/chain/accounts/{sender}")
        assert account["verified"] is True and account["nonce"] == 1 and account["source"] == node.url
        assert account["height"] >= seen["height"] and "state proof" in account["verification"]
        own = hub.get("/api/plugins/chain/account")  # the hub's own (its controller key, never funded): proven empty
        assert own["address"].startswith("ruff1") and own["balance"] == 0 and own["verified"] is True
        status, missing = hub.request("GET", f"/api/plugins/chain/tx/{'ab' * 32}")
        assert status == 404 and missing["error"] == "not_found"

        # The node dies: the hub keeps running, says so, and keeps what it verified.
        before = len(hub.log())
        node.kill9()
        down = poll("the hub to notice the node is down", lambda: not (h := head())["connected"] and h, 15, hub.log)
        assert down["last_error"] and down["height"] >= seen["height"]
        status, answer = hub.request("GET", f"/api/plugins/chain/tx/{tx.hash.hex()}")
        assert status == 503 and node.url in answer["message"]
        assert hub.proc.poll() is None and hub.request("GET", "/api/health", auth=False)[0] == 200

        # It comes back on the same data directory: the hub catches up.
        node.start()
        back = poll("the hub to catch up with the restarted node",
                    lambda: (h := head())["connected"] and h["height"] > down["height"] + 2
                    and h["final"]["height"] > down["final"]["height"] and h, 30, hub.log, node.log)
        assert back["refused"] is None
        log = hub.log()[before:]
        assert log.count("cannot follow the node") == 1, log  # one warning for the one outage
        assert "answers again" in log and "Traceback" not in log
    finally:
        node.close()
        hub.stop()


def test_rpc_without_genesis_is_refused_naming_the_key(tmp_path):
    data = tmp_path / "hub-data"
    data.mkdir()
    (data / "configuration.yaml").write_text("chain:\n  rpc: http://127.0.0.1:9\n")
    out = run_cli(data, "config", "check")
    assert out.returncode == 1 and "chain.genesis" in out.stdout and "chain.rpc" in out.stdout, out.stdout
    hub = HubProcess(data).start()
    try:
        chain = next(p for p in hub.get("/api/plugins") if p["name"] == "chain")
        assert chain["status"] == "config_error" and "chain.genesis" in chain["error"], chain
        assert "chain.genesis" in hub.log()
    finally:
        hub.stop()
    assert not (data / "chain").exists()  # it did not fall back to an embedded chain


# --- the remote view in-process: what it verifies and what it only reports ------------------------

def _remote_over(client: TestClient, genesis):
    """A RemoteChain whose HTTP goes to an in-process node RPC instead of a socket."""
    from hub.chain.remote import NodeAnswered, RemoteChain

    remote = RemoteChain("http://node.invalid", genesis, interval=0.01)

    def fetch(path: str):
        got = client.get(path)
        if got.status_code >= 400:
            raise NodeAnswered(got.status_code, got.json()["message"])
        return got.content, got.headers.get("content-type", "")

    remote._fetch = fetch
    return remote


def test_tampered_answers_are_not_verified_and_lying_balances_are_refused(tmp_path):
    from hub.chain.light import LightClientError
    from hub.chain.node.node import ChainNode
    from hub.chain.node.rpc import create_rpc_app

    from tests.chain.chainkit import GENESIS_TIME, Wallet, key, make_genesis

    producer, alice, bob = key("rh-producer"), key("rh-alice"), key("rh-bob")
    g = make_genesis([producer], {alice: 10**9}, PRODUCERS=3)
    node = ChainNode(tmp_path / "node", g, producer)
    wallet = Wallet(alice, g)
    sent = [wallet.send(bob, 1000) for _ in range(3)]
    for tx in sent:
        node.submit(tx.raw, GENESIS_TIME + 1)
    for slot in range(1, 8):
        node.produce(GENESIS_TIME + g.rules().BLOCK_INTERVAL * slot)
    later = wallet.send(bob, 5)
    node.submit(later.raw, GENESIS_TIME + 1)
    try:
        with TestClient(create_rpc_app(node, now=lambda: GENESIS_TIME + 1)) as client:
            remote = _remote_over(client, g)
            asyncio.run(remote.sync())
            assert remote.light.head.hash == node.head.hash and remote.light.final.height == node.lib

            good = asyncio.run(remote.transaction(sent[1].hash))
            assert good["verified"] and good["final"] and good["height"] == 1 and "signed header" in good["verification"]
            pending = asyncio.run(remote.transaction(later.hash))
            assert pending["verified"] is False and pending["final"] is False and "not in a block" in pending["verification"]
            assert asyncio.run(remote.transaction(b"\x01" * 32)) is None

            # A node that lies about the proof, the bytes or the height gets verified: false.
            real = client.get(f"/tx/{sent[1].hash.hex()}").json()
            lies = [
                {**real, "proof": {**real["proof"], "index": (real["proof"]["index"] + 1) % 3}},
                {**real, "proof": {**real["proof"], "path": list(reversed(real["proof"]["path"]))}},
                {**real, "height": 2},
                {**real, "height": 99},
                {**real, "raw": sent[0].raw.hex()},
            ]
            for lie in lies:
                ok, why = remote._check(sent[1].hash, lie)
                assert ok is False and why, lie

            alice_address = encode_address(address_of(alice.public_key))
            account = asyncio.run(remote.account(alice_address))
            assert account["verified"] is True and account["nonce"] == 3 and account["final"] is False
            assert account["balance"] == 10**9 - 3 * 1000 - 3 * sent[0].fee and account["hash"] == node.head.hash.hex()
            nobody = asyncio.run(remote.account(encode_address(b"\x05" * 20)))  # absence is proven too
            assert nobody["verified"] is True and (nobody["balance"], nobody["nonce"]) == (0, 0)

            # A node that lies about a balance: refused, and the lie is not shown at all.
            from hub.chain.remote import StateRefused
            from hub.crypto.encoding import decode, encode

            real_fetch = remote._fetch

            def lying(tamper):
                def fetch(path):
                    body, kind = real_fetch(path)
                    if path.endswith("/proof"):
                        body = json.dumps(tamper(json.loads(body))).encode()
                    return body, kind
                return fetch

            def rich(answer):  # the account's entry rewritten to hold a billion RUFF
                entries = answer["proof"]["entries"]
                for i, e in enumerate(entries):
                    ns, k, v = decode(bytes.fromhex(e))
                    if k == address_of(alice.public_key):
                        entries[i] = encode([ns, k, [10**15, v[1]]]).hex()
                return {**answer, "balance": 10**15}

            lies = {
                "a billion RUFF": rich,
                "the account left out": lambda a: {**a, "proof": {**a["proof"], "entries": []}},
                "a sibling hash changed": lambda a: {**a, "proof": {**a["proof"],
                                                                   "path": ["00" * 32] + a["proof"]["path"][1:]}},
                "a block the client does not know": lambda a: {**a, "hash": "ab" * 32},
                "no proof": lambda a: {k: v for k, v in a.items() if k != "proof"},
            }
            for what, tamper in lies.items():
                remote._fetch = lying(tamper)
                try:
                    shown = asyncio.run(remote.account(alice_address))
                    raise AssertionError(f"{what}: shown {shown}")
                except StateRefused as exc:
                    assert exc.status == 502 and alice_address in exc.message, (what, exc.message)
            remote._fetch = real_fetch

            # Another chain's genesis: refused with a sentence that names both, nothing accepted.
            other = make_genesis([key("rh-someone-else")], {alice: 1}, PRODUCERS=3)
            stranger = _remote_over(client, other)
            try:
                asyncio.run(stranger.sync())
                raise AssertionError("a node of another chain was followed")
            except LightClientError as exc:
                assert exc.reason.value == "wrong_chain" and "chain.genesis" in str(exc)
            assert stranger.light.head.height == 0
    finally:
        node.close()


def _follow_for(remote, syncs: int, caplog) -> tuple[list[float], list[str]]:
    """Run ``remote.follow`` for ``syncs`` polls: the back-off before each and the warnings logged."""
    import logging

    waits: list[float] = []
    sync = remote.sync

    async def run() -> None:
        stop = asyncio.Event()

        async def counted():
            waits.append(remote.retry_in)
            if len(waits) >= syncs:
                stop.set()
            return await sync()

        remote.sync = counted
        await remote.follow(stop)

    with caplog.at_level(logging.DEBUG, logger="hub.chain.remote"):
        asyncio.run(run())
    return waits, [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]


def test_follow_logs_an_outage_once_and_backs_off(caplog):
    """No node at all: the loop never raises, warns once, and waits longer each time (capped)."""
    from hub.chain.remote import MAX_BACKOFF, RemoteChain

    from tests.chain.chainkit import key, make_genesis

    port = free_ports(1)[0]  # nothing listens there
    remote = RemoteChain(f"http://127.0.0.1:{port}", make_genesis([key("rh-p")]), interval=0.01)
    waits, warnings = _follow_for(remote, 6, caplog)
    assert len(warnings) == 1 and "cannot follow" in warnings[0]
    assert waits[1:] == sorted(waits[1:]) and waits[-1] > waits[1] and max(waits) <= MAX_BACKOFF, waits
    shown = remote.head()
    assert shown["connected"] is False and shown["last_error"] and shown["retry_in"] == remote.retry_in > waits[-1]


def test_embedded_mode_answers_the_same_routes(tmp_path):
    """The embedded view has the remote view's shape: mode, final, and verified from its own node."""
    from fastapi import FastAPI

    from hub.chain.api import router
    from hub.chain.node.node import ChainNode

    from tests.chain.chainkit import GENESIS_TIME, Wallet, key, make_genesis

    producer, alice, bob = key("em-producer"), key("em-alice"), key("em-bob")
    g = make_genesis([producer], {alice: 10**9}, PRODUCERS=3)
    node = ChainNode(tmp_path / "node", g, producer)
    tx = Wallet(alice, g).send(bob, 1000)
    node.submit(tx.raw, GENESIS_TIME + 1)
    for slot in range(1, 5):
        node.produce(GENESIS_TIME + g.rules().BLOCK_INTERVAL * slot)
    app = FastAPI()
    app.include_router(router(node))
    try:
        with TestClient(app) as client:
            head = client.get("/head").json()
            assert head["mode"] == "embedded" and head["height"] == 4 and head["hash"] == node.head.hash.hex()
            assert head["final"] == {"height": node.lib, "hash": node.store.canonical_hash(node.lib).hex()}
            got = client.get(f"/tx/{tx.hash.hex()}").json()
            assert got["verified"] and got["final"] and got["height"] == 1 and got["raw"] == tx.raw.hex()
            assert client.get(f"/tx/{'cd' * 32}").status_code == 404
            assert client.get("/tx/nothex").status_code == 422
            account = client.get(f"/accounts/{encode_address(address_of(alice.public_key))}").json()
            assert account["verified"] is True and account["nonce"] == 1
    finally:
        node.close()


def test_a_refused_header_is_logged_with_its_reason_and_changes_nothing(tmp_path, caplog):
    from hub.chain.node.node import ChainNode
    from hub.chain.node.rpc import create_rpc_app
    from hub.chain.protocol.block import Header
    from hub.crypto.encoding import decode, encode

    from tests.chain.chainkit import GENESIS_TIME, key, make_genesis

    producer = key("rf-producer")
    g = make_genesis([producer], PRODUCERS=3)
    node = ChainNode(tmp_path / "node", g, producer)
    for slot in range(1, 6):
        node.produce(GENESIS_TIME + g.rules().BLOCK_INTERVAL * slot)
    try:
        with TestClient(create_rpc_app(node, now=lambda: GENESIS_TIME + 1)) as client:
            remote = _remote_over(client, g)
            honest = remote._fetch

            def forging(path: str):  # the node's header 4 with another signature
                body, kind = honest(path)
                if path.startswith("/headers"):
                    data = json.loads(body)
                    for h in data["headers"]:
                        if h["height"] == 4:
                            d = Header.from_dict(decode(bytes.fromhex(h["raw"]))).as_dict()
                            d["sig"] = bytes(64)
                            h["raw"] = encode(d).hex()
                    body = json.dumps(data).encode()
                return body, kind

            remote._fetch = forging
            sync = remote.sync
            _, warnings = _follow_for(remote, 4, caplog)
            assert len(warnings) == 1 and "bad_signature" in warnings[0] and "height 4" in warnings[0], warnings
            assert remote.light.head.height == 3 and remote.light.head.hash == node.store.canonical_hash(3)
            shown = remote.head()
            assert shown["connected"] is True and "bad_signature" in shown["refused"] and shown["height"] == 3

            remote._fetch = honest  # the node mends its ways: the client moves on
            remote.sync = sync
            asyncio.run(sync())
            assert remote.light.head.hash == node.head.hash
    finally:
        node.close()


class _LyingProxy:
    """A loopback HTTP proxy in front of a node's RPC that passes everything through, except that
    when ``lie`` is set it rewrites account proofs to give the account a billion RUFF (the attack
    of issue 15: a hub in light mode showed such a balance, labelled unverified)."""

    def __init__(self, upstream: str) -> None:
        import http.server
        import threading

        from hub.crypto.encoding import decode, encode

        proxy = self
        self.lie = False

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 - the http.server interface
                try:
                    with urllib.request.urlopen(upstream + self.path, timeout=5) as resp:
                        status, body, kind = resp.status, resp.read(), resp.headers.get("Content-Type", "")
                except urllib.error.HTTPError as exc:
                    status, body, kind = exc.code, exc.read(), exc.headers.get("Content-Type", "")
                if proxy.lie and self.path.endswith("/proof") and status == 200:
                    answer = json.loads(body)
                    entries = answer["proof"]["entries"]
                    for i, e in enumerate(entries):
                        ns, k, v = decode(bytes.fromhex(e))
                        if ns == "acct" and encode(k).hex() == answer["key"]:
                            entries[i] = encode([ns, k, [10**15, v[1]]]).hex()
                    body = json.dumps({**answer, "balance": 10**15}).encode()
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_hub_in_light_mode_shows_only_proven_balances_and_refuses_a_lying_node(tmp_path):
    node = Node(tmp_path)
    proxy = _LyingProxy(node.url)
    data = tmp_path / "hub-data"
    data.mkdir()
    (data / "configuration.yaml").write_text(
        f"chain:\n  rpc: {proxy.url}\n  genesis: {tmp_path / 'g' / 'genesis.json'}\n")
    hub = HubProcess(data)
    node.start()
    try:
        poll("the node's RPC", lambda: node.get("/head"), 20, node.log)
        hub.start()
        poll("the hub's light head",
             lambda: (h := hub.get("/api/plugins/chain/head"))["connected"] and h["height"] >= 2, 20, hub.log, node.log)
        producer = json.loads((tmp_path / "g/keys/producer-0.key").read_text())["address"]
        status, honest = hub.request("GET", f"/api/plugins/chain/accounts/{producer}")
        genesis_balance = load_genesis(tmp_path / "g/genesis.json").balances[producer]  # no transfers: unchanged
        assert status == 200 and honest["verified"] is True and honest["balance"] == genesis_balance, honest

        proxy.lie = True
        status, refused = hub.request("GET", f"/api/plugins/chain/accounts/{producer}")
        assert status == 502 and "not shown" in refused["message"] and "balance" not in refused, refused
        assert str(10**15) not in json.dumps(refused)
        assert "refused the state" in hub.log()

        proxy.lie = False  # an honest answer is shown again
        status, again = hub.request("GET", f"/api/plugins/chain/accounts/{producer}")
        assert status == 200 and again["verified"] is True
    finally:
        node.close()
        hub.stop()
        proxy.close()

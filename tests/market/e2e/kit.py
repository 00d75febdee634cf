"""The market across real processes: an owner's ``hub run`` (embedded chain, or following a devnet
of ``hub chain node`` processes as a light client), a renter with its own key and data directory
using the CLI, and the chain's own record read from a node's store as the ground truth.

Every time constant the market uses is small and comes from the genesis file (never a patch):
200-300 ms slots, a few seconds of refund timeout, review period and challenge period, so a whole
rental with its settlement takes seconds.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hub.chain.node.files import write_key
from hub.chain.protocol.genesis import Genesis
from hub.crypto.address import address_of, encode_address
from hub.crypto.keys import PrivateKey
from hub.crypto.statements import Bind, sign
from tests.hubproc import DEMO, HubProcess, hub_command, run_cli

RUFF = 10**6
PLUG = "demo:smart_plug"
PLUG_KEY = PrivateKey(hashlib.sha256(b"market-plug").digest())  # as printed on the demo plug's label
OWNER = PrivateKey(hashlib.sha256(b"market-owner").digest())  # the device's controller: the hub's key
RENTER = PrivateKey(hashlib.sha256(b"market-renter").digest())
STRANGER = PrivateKey(hashlib.sha256(b"market-stranger").digest())
FUNDS = 1000 * RUFF
#: Where a ``call`` record (hub/chain/protocol/state.py) keeps its status:
#: (contract, renter, escrow, channel, time, windows, status, used, ended at).
STATUS = 6

#: The market's clock, small: a whole rental with its settlement in seconds.
REFUND_TIMEOUT = 4000
#: Longer than the others: no test waits for it to end, and the renter reviews through a CLI process
#: after the return, which a loaded CI machine (Chromium, brokers, four workers) took over 4 s to do.
REVIEW_PERIOD = 15000
CHALLENGE_PERIOD = 3000


def address(key: PrivateKey) -> bytes:
    return address_of(key.public_key)


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def market_constants(block_ms: int) -> dict[str, int]:
    return {"BLOCK_INTERVAL": block_ms, "PRODUCERS": 3, "REFUND_TIMEOUT": REFUND_TIMEOUT,
            "REVIEW_PERIOD": REVIEW_PERIOD, "CHALLENGE_PERIOD": CHALLENGE_PERIOD}


def write_genesis(directory: Path, producers: list[PrivateKey], *, chain_id: str, block_ms: int,
                  key_names: list[str]) -> Genesis:
    """A genesis of ``producers`` (their key files written as ``key_names``) funding the owner,
    the renter and a stranger, none of them a producer: their balances move only by what they do."""
    genesis = Genesis(chain_id=chain_id, genesis_time=now_ms() // 1000 * 1000,
                      producers=[k.public_key.hex() for k in producers],
                      balances={encode_address(address(k)): FUNDS for k in (OWNER, RENTER, STRANGER)},
                      constants=market_constants(block_ms))
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "genesis.json").write_text(genesis.to_json())
    for k, name in zip(producers, key_names):
        write_key(directory / "keys" / name, k)
    return genesis


def bind_locally(data: Path, genesis: Genesis) -> dict:
    """What ``hub device keygen`` + ``hub device bind`` leave for the keyless demo plug: its key
    known to the hub and its light node bound to the owner (the hub is stopped). Returns the signed
    Bind as a ``bind_device`` payload, for the chain."""
    from hub.identity.lightnode import LightNode
    from hub.identity.store import IdentityStore, SqliteFlash

    net = genesis.network
    signed = sign(Bind(PLUG_KEY.public_key, OWNER.public_key, now_ms() - 5000), PLUG_KEY, net)
    store = IdentityStore(data)
    try:
        store.set_identity(PLUG, PLUG_KEY.public_key, False, time.time())
        LightNode(PLUG_KEY.public_key, net, SqliteFlash(store, PLUG, time.time)).bind(signed)
    finally:
        store.close()
    return {"statement": signed.to_body()}


# --- the chain's own record ---------------------------------------------------------------------

class Truth:
    """A node's store, read directly: what the chain says, whatever the hub or the CLI claims."""

    def __init__(self, chain_dir: Path, genesis: Genesis) -> None:
        self.dir, self.genesis = chain_dir, genesis

    def _store(self):
        from hub.chain.node.store import ChainStore

        return ChainStore(self.dir)

    def value(self, ns: str, key: Any) -> Any:
        store = self._store()
        try:
            return store.state_value(ns, key)
        finally:
            store.close()

    def balance(self, key: PrivateKey) -> int:
        account = self.value("acct", address(key))
        return account[0] if account else 0

    def head(self) -> int:
        store = self._store()
        try:
            head = store.head()
            return head.height if head else 0
        finally:
            store.close()

    def txs_by(self, key: PrivateKey) -> list:
        """Every transaction ``key`` sent that a canonical block holds, oldest first."""
        from hub.chain.protocol.tx import Transaction

        store = self._store()
        try:
            out = []
            height = 1
            while (block := store.canonical_block(height)) is not None:
                for raw in block.txs:
                    tx = Transaction.from_bytes(raw)
                    if tx.sender == key.public_key:
                        out.append(tx)
                height += 1
            return out
        finally:
            store.close()

    def fees(self, key: PrivateKey) -> int:
        return sum(tx.fee for tx in self.txs_by(key))

    def included(self, tx_hash: bytes) -> int | None:
        store = self._store()
        try:
            found = store.tx_location(tx_hash)
            return found[0] if found else None
        finally:
            store.close()

    def supply_holds(self) -> tuple[int, int]:
        """(what is held, the supply): balances, open calls' escrow and channels' remaining
        deposits, against ``meta.supply`` (spec17.md's invariant)."""
        store = self._store()
        try:
            held = 0
            for ns, _key, value in store.state_rows():
                if ns == "acct":
                    held += value[0]
                elif ns == "call" and value[STATUS] == "open":
                    held += value[2]  # a prepaid call's escrow
                elif ns == "chan" and not value[7]:  # a channel holds deposit - withdrawn until paid out
                    held += value[2] - value[3]
            return held, store.state_value("meta", "supply")
        finally:
            store.close()


# --- chains ---------------------------------------------------------------------------------------

class Embedded:
    """The owner's hub runs the chain itself (one producer); others queue transactions in its
    chain directory's inbox, the way ``hub chain send`` does on that machine."""

    mode = "embedded"

    def __init__(self, data: Path, block_ms: int = 200) -> None:
        self.data = data
        self.chain_dir = data / "chain"
        self.producer = PrivateKey(hashlib.sha256(b"market-producer").digest())
        self.genesis = write_genesis(self.chain_dir, [self.producer], chain_id="markettest", block_ms=block_ms,
                                     key_names=["producer.key"])
        write_key(self.chain_dir / "keys" / "owner.key", OWNER)
        self.truth = Truth(self.chain_dir, self.genesis)

    def config(self) -> str:
        return "chain:\n"

    def submit(self, key: PrivateKey, tx_type: str, payload: dict) -> bytes:
        from hub.chain.cli_support import sign_tx
        from hub.chain.node.store import ChainStore

        store = ChainStore(self.chain_dir)
        try:
            sender = address(key)
            account = store.state_value("acct", sender)
            nonce = max(account[1] if account else 0, store.inbox_next_nonce(sender)) + 1
            tx, _ = sign_tx(key, self.genesis, tx_type, payload, nonce)
            store.add_to_inbox(tx.hash, tx.raw, sender, nonce)
            return tx.hash
        finally:
            store.close()

    def fate(self, tx_hash: bytes) -> str | None:
        """None while undecided; "included" or the refusal's text."""
        if self.truth.included(tx_hash) is not None:
            return "included"
        from hub.chain.node.store import ChainStore

        store = ChainStore(self.chain_dir)
        try:
            status = store.inbox_status(tx_hash)
        finally:
            store.close()
        return status if status and status.startswith(("rejected", "dropped")) else None

    def close(self) -> None:
        pass


class Devnet:
    """``nodes`` producer processes on loopback (their own data directories, restartable), the
    owner's hub following node 0 over its RPC as a light client."""

    mode = "remote"

    def __init__(self, root: Path, nodes: int = 2, block_ms: int = 300) -> None:
        from hub.chain.devnet_cli import free_ports

        self.root = root
        self.keys = [PrivateKey(hashlib.sha256(b"market-node-%d" % i).digest()) for i in range(nodes)]
        self.genesis = write_genesis(root / "g", self.keys, chain_id="marketnet", block_ms=block_ms,
                                     key_names=[f"producer-{i}.key" for i in range(nodes)])
        ports = free_ports(2 * nodes)
        self.p2p, self.rpc = ports[:nodes], ports[nodes:]
        self.procs: list[subprocess.Popen | None] = [None] * nodes
        self.url = f"http://127.0.0.1:{self.rpc[0]}"
        self.truth = Truth(root / "n0", self.genesis)

    def config(self) -> str:
        return f"chain:\n  rpc: {self.url}\n  genesis: {self.root / 'g' / 'genesis.json'}\n"

    def start(self, i: int | None = None) -> "Devnet":
        for n in range(len(self.keys)) if i is None else [i]:
            peers = ",".join(f"127.0.0.1:{p}" for j, p in enumerate(self.p2p) if j != n)
            with open(self.root / f"n{n}.log", "a") as log:
                self.procs[n] = subprocess.Popen(
                    [*hub_command("chain", "node", "--genesis", "g/genesis.json", "--data", f"n{n}",
                                  "--producer-key", f"g/keys/producer-{n}.key",
                                  "--listen", f"127.0.0.1:{self.p2p[n]}", "--peers", peers,
                                  "--rpc", f"127.0.0.1:{self.rpc[n]}")],
                    cwd=self.root, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                    env={**os.environ, "PYTHONUNBUFFERED": "1"})
        wait_until("the devnet's RPC", lambda: (h := self.get("/head")) and h.get("height", 0) >= 1, 30, self.log)
        return self

    def stop(self) -> None:
        """The whole network goes away at once (kill -9): the chain is unreachable."""
        for p in self.procs:
            if p is not None and p.poll() is None:
                p.send_signal(signal.SIGKILL)
                p.wait(10)

    close = stop

    def log(self) -> str:
        return "\n".join(f"--- n{i}\n" + (self.root / f"n{i}.log").read_text(errors="replace")[-2000:]
                         for i in range(len(self.keys)) if (self.root / f"n{i}.log").exists())

    def get(self, path: str) -> Any:
        try:
            with urllib.request.urlopen(self.url + path, timeout=3) as resp:
                return json.loads(resp.read())
        except (OSError, ValueError):
            return None

    def submit(self, key: PrivateKey, tx_type: str, payload: dict) -> bytes:
        """Signed here, sent to node 0; a refusal at admission raises :class:`Refused`."""
        from hub.chain.cli_support import sign_tx

        account = self.get(f"/accounts/{encode_address(address(key))}") or {}
        nonce = account.get("next_nonce") or account.get("nonce", 0) + 1
        tx, _ = sign_tx(key, self.genesis, tx_type, payload, nonce)
        req = urllib.request.Request(self.url + "/tx", data=json.dumps({"tx": tx.raw.hex()}).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=5) as resp:
                json.loads(resp.read())
        except urllib.error.HTTPError as exc:
            answer = json.loads(exc.read() or b"{}")
            raise Refused(answer.get("error") or answer.get("reason") or str(answer), json.dumps(answer)) from None
        return tx.hash

    def fate(self, tx_hash: bytes) -> str | None:
        found = self.get(f"/tx/{tx_hash.hex()}")
        if found and isinstance(found.get("height"), int):
            return "included"
        if found and found.get("status") in ("rejected", "dropped"):
            return f"{found['status']}: {found.get('reason')}"
        return None


class Refused(Exception):
    def __init__(self, reason: str, text: str) -> None:
        super().__init__(f"{reason}: {text}")
        self.reason = reason


def wait_until(what: str, check, timeout: float, *logs):
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}\n" + "\n----\n".join(log() for log in logs))
        time.sleep(0.1)


def settled(chain, tx_hash: bytes, timeout: float = 20, *logs) -> str:
    """A transaction's fate once decided: "included" or "rejected: <reason>"."""
    return wait_until(f"transaction {tx_hash.hex()[:16]}", lambda: chain.fate(tx_hash), timeout, *logs)


# --- the owner ------------------------------------------------------------------------------------

@dataclass
class Owner:
    """The owner's hub: the demo home, the demo plug bound to the owner's key on the hub's light
    node and on chain, the chain given by ``chain``."""

    data: Path
    chain: Any
    hub: HubProcess = field(init=False)
    extra: str = ""

    def __post_init__(self) -> None:
        self.data.mkdir(parents=True, exist_ok=True)
        key_file = self.data / "owner.key"
        if not key_file.exists():
            write_key(key_file, OWNER)
        identity = "" if self.chain.mode == "embedded" else f"identity:\n  key: {key_file}\n"
        (self.data / "configuration.yaml").write_text(
            "hub: {commit_interval: 0.1}\n" + DEMO + self.chain.config() + identity + self.extra)
        self.binding = bind_locally(self.data, self.chain.genesis)
        self.hub = HubProcess(self.data)

    def start(self) -> "Owner":
        self.hub.start(timeout=30)  # the same port on a restart: renters know the hub by its URL
        return self

    def bind_on_chain(self) -> None:
        tx = self.chain.submit(OWNER, "bind_device", self.binding)
        assert settled(self.chain, tx, 30, self.hub.log) == "included"

    def cli(self, *args: str, ok: bool = True, timeout: float = 60) -> str:
        result = run_cli(self.data, *args, timeout=timeout)
        text = result.stdout + result.stderr
        assert (result.returncode == 0) == ok, text
        return text

    def json(self, *args: str, timeout: float = 60) -> Any:
        """A command's ``--json`` answer (standard output only; words go to standard error)."""
        result = run_cli(self.data, *args, "--json", timeout=timeout)
        assert result.returncode == 0, result.stdout + result.stderr
        return json.loads(result.stdout)

    def outlet(self) -> str:
        return self.hub.get("/api/states/switch.smart_plug")["value"]


# --- the renter -----------------------------------------------------------------------------------

class Renter:
    """Another machine: its own data directory and key file, the owner's hub reachable by URL and
    the chain by ``--rpc`` (a devnet) or by the owner's chain directory (the embedded default)."""

    def __init__(self, root: Path, owner: Owner, key: PrivateKey = RENTER) -> None:
        self.home = root / f"renter-{key.public_key.hex()[:6]}"
        self.home.mkdir(parents=True, exist_ok=True)
        self.key_file = self.home / "renter.key"
        if not self.key_file.exists():
            write_key(self.key_file, key)
        self.key, self.owner = key, owner
        self.counter = 0

    @property
    def chain_args(self) -> list[str]:
        return ["--rpc", self.owner.chain.url] if self.owner.chain.mode == "remote" else []

    @property
    def data(self) -> Path:
        """Where the CLI runs: the renter's own directory with a node to talk to; on the embedded
        default the chain is only reachable on the owner's machine, so there the renter runs its
        commands beside the owner's (the README walkthrough's case), with its own key file."""
        return self.home if self.owner.chain.mode == "remote" else self.owner.data

    def run(self, *args: str, timeout: float = 60, env: dict | None = None) -> subprocess.CompletedProcess:
        return run_cli(self.data, *args, timeout=timeout, env=env)

    def cli(self, *args: str, ok: bool = True, timeout: float = 60) -> str:
        result = self.run(*args, timeout=timeout)
        text = result.stdout + result.stderr
        assert (result.returncode == 0) == ok, text
        return text

    def json(self, *args: str, timeout: float = 60) -> Any:
        result = self.run(*args, "--json", timeout=timeout)
        assert result.returncode == 0, result.stdout + result.stderr
        return json.loads(result.stdout)

    def popen(self, *args: str) -> subprocess.Popen:
        """A long-running CLI command (``hub market rent``), its output in a log file."""
        log = open(self.home / "cli.log", "ab")
        return subprocess.Popen(hub_command("--data", str(self.data), *args), stdout=log, stderr=subprocess.STDOUT,
                                env={**os.environ, "COLUMNS": "200", "PYTHONUNBUFFERED": "1"},
                                start_new_session=True)

    def log(self) -> str:
        path = self.home / "cli.log"
        return path.read_text(errors="replace")[-3000:] if path.exists() else ""

    def command(self, name: str = "turn_on") -> tuple[int, dict]:
        """A command signed with the renter's key, sent to the owner's hub with no token."""
        from hub.crypto.statements import Command

        self.counter = max(self.counter + 1, time.time_ns() // 1000)
        st = Command(self.owner.chain.genesis.chain_id, PLUG_KEY.public_key, "outlet", name, {}, now_ms(),
                     self.counter, self.key.public_key)
        return self.owner.hub.request("POST", f"/api/devices/{PLUG}/signed-commands",
                                      sign(st, self.key, self.owner.chain.genesis.network).to_json(), auth=False)


def reason(answer: tuple[int, dict]) -> str:
    status, body = answer
    return body.get("reason") or body.get("error") or f"HTTP {status}" if isinstance(body, dict) else f"HTTP {status}"


# --- market transactions, signed by hand: what a cheating renter or owner sends --------------------

def channel_id(renter: PrivateKey, payee: PrivateKey, openings: int) -> bytes:
    """spec17.md: sha256(b"channel" ‖ renter pk ‖ payee pk ‖ openings, 8 bytes big-endian)."""
    return hashlib.sha256(b"channel" + renter.public_key + payee.public_key + openings.to_bytes(8, "big")).digest()


def cheque(genesis: Genesis, *, channel: bytes, contract: bytes, call: bytes, amount: int, call_amount: int,
           receipt: bytes = b"\x00" * 32, renter: PrivateKey = RENTER):
    from hub.crypto.statements import Cheque

    return sign(Cheque(genesis.network.chain_id, channel, contract, call, receipt, amount, call_amount,
                       renter.public_key), renter, genesis.network)


def consent(genesis: Genesis, *, contract: bytes, call: bytes):
    from hub.crypto.statements import ReviewConsent

    return sign(ReviewConsent(genesis.network.chain_id, contract, call, PLUG_KEY.public_key, OWNER.public_key),
                OWNER, genesis.network)


PREPAID = {"kind": "prepaid", "price": 1 * RUFF, "window": 2000, "max_duration": 4000}


def create_contract(chain, terms: dict, *, commands=("outlet.turn_on",), endpoint: str = "") -> bytes:
    """The owner's offer sent straight to the chain (the contract id is the transaction hash)."""
    tx = chain.submit(OWNER, "create_contract", {"device": PLUG_KEY.public_key, "commands": list(commands),
                                                   "terms": terms, "endpoint": endpoint})
    assert settled(chain, tx) == "included", chain.fate(tx)
    return tx


def call(chain, contract: bytes, deposit: int, renter: PrivateKey = RENTER) -> bytes:
    tx = chain.submit(renter, "call", {"contract": contract, "deposit": deposit})
    assert settled(chain, tx) == "included", chain.fate(tx)
    return tx


def fate_of(chain, key: PrivateKey, tx_type: str, payload: dict, timeout: float = 20) -> str:
    """Send and wait: "included", or the refusal's reason (at admission or when producing)."""
    try:
        tx = chain.submit(key, tx_type, payload)
    except Refused as exc:
        return f"refused: {exc.reason}: {exc}"
    return settled(chain, tx, timeout)


# --- the renter's side of a metered call, by hand (the CLI's `rent` does the same) ----------------

METERED_TIME = {"kind": "metered", "rate": 100_000, "meter": "", "interval": 500, "deposit": 5 * RUFF,
                "max_duration": 60_000}  # 0.1 RUFF per started half second, at most a minute


def market_call(owner: Owner, call_id: bytes) -> tuple[int, Any]:
    """The renter's view of its call on the owner's hub (no token)."""
    return owner.hub.request("GET", f"/api/market/calls/{call_id.hex()}", auth=False)


def latest_receipt(owner: Owner, call_id: bytes):
    """The latest meter receipt of the call, signed now by the device or the hub (no token)."""
    from hub.crypto.statements import Signed

    status, body = owner.hub.request("GET", f"/api/market/calls/{call_id.hex()}/receipt", auth=False)
    assert status == 200, (status, body)
    return Signed.from_json(body.get("receipt", body) if isinstance(body, dict) and "receipt" in body else body)


def price_of(terms: dict, reading: int) -> int:
    """What usage up to ``reading`` costs under ``terms``: ``rate`` per 1,000 milli-units of a
    meter, or per ``interval`` ms of time, pro rata, rounded down (in the renter's favour)."""
    if terms["meter"]:
        return terms["rate"] * reading // 1000
    return terms["rate"] * reading // terms["interval"]


def pay(owner: Owner, call_id: bytes, contract: bytes, channel: bytes, terms: dict, paid_before: int = 0,
        renter: PrivateKey = RENTER):
    """The renter pays the hub's latest receipt: a cheque for what it costs (cumulative over the
    channel: ``paid_before`` from earlier calls). Returns (the signed cheque, the hub's answer)."""
    from hub.crypto.statements import receipt_hash

    receipt = latest_receipt(owner, call_id)
    assert receipt.verify(receipt.statement.signer, owner.chain.genesis.network)
    cost = price_of(terms, receipt.statement.reading)
    signed = cheque(owner.chain.genesis, channel=channel, contract=contract, call=call_id,
                    receipt=receipt_hash(receipt.statement), amount=paid_before + cost, call_amount=cost,
                    renter=renter)
    return signed, owner.hub.request("POST", "/api/market/cheques", signed.to_json(), auth=False)

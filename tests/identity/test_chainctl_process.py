"""Control through the chain against real processes: ``hub run`` with its embedded chain, and
``hub run`` following a ``hub chain node`` process as a light client.

The demo plug is keyless and bound to the hub's own key (``identity.key``: the chain's funded
producer key), as ``hub device keygen`` + ``bind`` leave it. A user (another funded key) submits
the transactions: the binding, and ``control_command``s whose envelope the controller signed. The
hub runs each once, also across a kill -9, and reports it with a ``state_change`` that lands on
chain."""

from __future__ import annotations

import json
import os
import subprocess
import time
import urllib.error
from pathlib import Path

from hub.chain.node.files import read_key, write_key
from hub.chain.protocol.genesis import load_genesis
from hub.crypto.address import address_of, encode_address
from hub.crypto.keys import PrivateKey
from hub.crypto.statements import Bind, Command, Grant, sign
from hub.identity.lightnode import LightNode
from hub.identity.store import IdentityStore, SqliteFlash
from tests.hubproc import DEMO, HubProcess, hub_command
from tests.identity.kit import PLUG, PLUG_KEY, STRANGER, command_log

USER = PrivateKey(b"\x61" * 32)  # pays for the transactions; signs none of the envelopes
COUNTERS = iter(range(int(time.time() * 1000), 2**62))


def _genesis(out: Path, block_ms: int) -> None:
    subprocess.run(hub_command("chain", "genesis", "--out", str(out), "--producers", "1", "--chain-id", "ctlnet",
                               "--set", f"BLOCK_INTERVAL={block_ms}", "--set", "PRODUCERS=3",
                               "--balance", f"{encode_address(address_of(USER.public_key))}=1000"),
                   check=True, capture_output=True, timeout=30)


def _bind_locally(data: Path, net, controller: PrivateKey):
    """What `hub device keygen` + `hub device bind` leave for the keyless demo plug: its key and
    the hub's light node bound to ``controller`` (the hub is stopped). Returns the signed Bind."""
    store = IdentityStore(data)
    try:
        store.set_identity(PLUG, PLUG_KEY.public_key, False, time.time())
        node = LightNode(PLUG_KEY.public_key, net, SqliteFlash(store, PLUG, time.time))
        signed = sign(Bind(PLUG_KEY.public_key, controller.public_key, int(time.time() * 1000) - 5000), PLUG_KEY, net)
        node.bind(signed)
        return signed
    finally:
        store.close()


def _envelope(net, signer: PrivateKey, name: str, *, issued_at: int | None = None) -> dict:
    st = Command(net.chain_id, PLUG_KEY.public_key, "outlet", name, {},
                 int(time.time() * 1000) if issued_at is None else issued_at, next(COUNTERS), signer.public_key)
    return {"command": sign(st, signer, net).to_body(), "grant": None}


def _outlet(hub: HubProcess) -> str:
    return hub.get("/api/states/switch.smart_plug")["value"]


def _taken(hub: HubProcess, tx: bytes, *, reported: bool = True, timeout: float = 20) -> dict:
    def done():
        status, found = hub.request("GET", f"/api/plugins/chainctl/commands/{tx.hex()}")
        return status == 200 and found["outcome"] is not None and (found["reported"] == "final" or not reported) \
            and found
    return hub.wait_for(done, timeout, what=f"control_command {tx.hex()[:16]} handled")


class Inbox:
    """Transactions queued the way `hub chain send` queues them for the running hub's node."""

    def __init__(self, chain_dir: Path) -> None:
        from hub.chain.node.store import ChainStore

        self.genesis = load_genesis(chain_dir / "genesis.json")
        self.store = ChainStore(chain_dir)

    def send(self, key: PrivateKey, tx_type: str, payload: dict) -> bytes:
        from hub.chain.cli_support import sign_tx

        sender = address_of(key.public_key)
        account = self.store.state_value("acct", sender)
        nonce = max(account[1] if account else 0, self.store.inbox_next_nonce(sender)) + 1
        tx, _ = sign_tx(key, self.genesis, tx_type, payload, nonce)
        self.store.add_to_inbox(tx.hash, tx.raw, sender, nonce)
        return tx.hash

    def status(self, tx_hash: bytes) -> str | None:
        return self.store.inbox_status(tx_hash)

    def close(self) -> None:
        self.store.close()


def test_embedded_chain_command_runs_once_across_kill_9_and_is_reported(tmp_path):
    data = tmp_path / "data"
    chain_dir = data / "chain"
    _genesis(chain_dir, 200)
    owner_key = chain_dir / "keys" / "producer-0.key"
    owner = read_key(owner_key)
    (data / "configuration.yaml").write_text(f"chain:\nidentity:\n  key: {owner_key}\n{DEMO}")
    net = load_genesis(chain_dir / "genesis.json").network
    binding = _bind_locally(data, net, owner)
    hub = HubProcess(data).start()
    inbox = Inbox(chain_dir)
    try:
        plugins = {p["name"]: p for p in hub.get("/api/plugins")}
        assert plugins["chainctl"]["status"] == "running", plugins["chainctl"]
        hub.wait_for(lambda: _outlet(hub) in ("on", "off"), what="the demo plug")
        hub.post("/api/entities/switch.smart_plug/commands/turn_off") if _outlet(hub) == "on" else None
        bound = inbox.send(USER, "bind_device", {"statement": binding.to_body()})
        hub.wait_for(lambda: (r := hub.request("GET", f"/api/plugins/chain/tx/{bound.hex()}"))[0] == 200
                     and r[1]["final"], 20, what="the binding final on chain")

        # The controller's command, sent through the chain by someone else's transaction.
        tx = inbox.send(USER, "control_command", _envelope(net, owner, "turn_on"))
        taken = _taken(hub, tx)
        assert taken["outcome"]["ok"] is True and taken["outcome"]["entity"] == "outlet", taken
        assert _outlet(hub) == "on"
        report = hub.get(f"/api/plugins/chain/tx/{taken['report_tx']}")
        assert report["type"] == "state_change" and report["final"] and report["payload"]["command"] == tx.hex()
        assert report["payload"]["ok"] is True and report["sender_key"] == owner.public_key.hex()

        # A command issued two minutes before its block: the chain takes it, the gate refuses it as
        # stale (the window is judged against the block's time), and the refusal is reported.
        stale = inbox.send(USER, "control_command",
                           _envelope(net, owner, "turn_off", issued_at=int(time.time() * 1000) - 120_000))
        refused = _taken(hub, stale)["outcome"]
        assert refused["ok"] is False and refused["reason"] == "stale", refused
        assert _outlet(hub) == "on"
        # An unauthorised one never reaches a block: the chain refuses it, with its reason.
        stranger = inbox.send(USER, "control_command", _envelope(net, STRANGER, "turn_off"))
        hub.wait_for(lambda: (inbox.status(stranger) or "").startswith("rejected"), 10, what="the refusal")
        assert "not_controller" in inbox.status(stranger)

        # A renter with the owner's grant, through `hub chain control` (signs and queues it for the
        # running hub's chain): the granted command runs.
        write_key(tmp_path / "renter.key", USER)
        grant = sign(Grant(PLUG_KEY.public_key, owner.public_key, USER.public_key, ["outlet.turn_off"], 0, 0, 0,
                           "share"), owner, net)
        (tmp_path / "grant.json").write_text(json.dumps(grant.to_json()))
        sent = subprocess.run(hub_command("chain", "control", PLUG_KEY.public_key.hex(), "outlet", "turn_off",
                                          "--data", str(data), "--key", str(tmp_path / "renter.key"),
                                          "--grant", str(tmp_path / "grant.json"), "--wait", "--json"),
                              capture_output=True, text=True, timeout=30)
        assert sent.returncode == 0, sent.stdout + sent.stderr
        by_renter = bytes.fromhex(json.loads(sent.stdout)["hash"])
        assert _taken(hub, by_renter)["outcome"]["ok"] is True and _outlet(hub) == "off"

        # The hub dies with kill -9 and comes back: no chain command runs again (the plug stays off
        # although the first one turned it on), nothing is reported twice.
        hub.wait_for(lambda: sum(r[2].startswith("chain:") for r in command_log(data)) == 3,
                     what="the chain commands recorded")  # what a kill -9 keeps is what was committed
        hub.kill()
        hub.start()
        later = inbox.send(USER, "transfer", {"to": address_of(STRANGER.public_key), "amount": 1, "memo": b""})
        hub.wait_for(lambda: (r := hub.request("GET", f"/api/plugins/chain/tx/{later.hex()}"))[0] == 200
                     and r[1]["final"], 20, what="a later block final after the restart")
        hub.wait_for(lambda: _outlet(hub) in ("on", "off"), what="the demo plug after the restart")
        assert _outlet(hub) == "off"
        chain_runs = [row for row in command_log(data) if row[2].startswith("chain:")]
        assert [(row[1], row[3]) for row in chain_runs] == [("turn_on", 1), ("turn_off", 0), ("turn_off", 1)], chain_runs
        assert chain_runs[0][2] == f"chain:{tx.hex()[:16]}" and chain_runs[1][4].startswith("stale")
        listed = hub.get("/api/plugins/chainctl/commands")["commands"]
        assert sorted(c["tx"] for c in listed) == sorted([tx.hex(), stale.hex(), by_renter.hex()])
        assert all(c["reported"] == "final" for c in listed)
        assert hub.request("GET", f"/api/plugins/chainctl/commands/{'zz' * 32}")[0] == 422
        assert "Traceback" not in hub.log()
    finally:
        inbox.close()
        hub.stop()


def test_a_hub_following_a_node_process_runs_its_chain_commands(tmp_path):
    """Remote mode: the transactions go to a `hub chain node` process; the hub reads its blocks
    through the light client (each checked against a verified header) and reports by `POST /tx`."""
    from hub.chain.access import build_tx
    from tests.chain.test_remote_hub import Node, poll

    node = Node(tmp_path, "--chain-id", "ctlnet", "--balance", f"{encode_address(address_of(USER.public_key))}=1000")
    g = tmp_path / "g"
    owner = read_key(g / "keys" / "producer-0.key")
    genesis = load_genesis(g / "genesis.json")
    net = genesis.network
    data = tmp_path / "hub-data"
    data.mkdir()
    (data / "configuration.yaml").write_text(
        f"chain:\n  rpc: {node.url}\n  genesis: {g / 'genesis.json'}\nidentity:\n  key: {g / 'keys' / 'producer-0.key'}\n{DEMO}")
    binding = _bind_locally(data, net, owner)
    nonce = iter(range(1, 1000))

    def send(tx_type: str, payload: dict) -> bytes:
        tx = build_tx(USER, net, genesis.rules(), tx_type, payload, next(nonce), int(time.time() * 1000))
        try:
            return bytes.fromhex(node.post_tx(tx.raw)["hash"])
        except urllib.error.HTTPError as exc:
            raise AssertionError(f"the node refused the {tx_type}: {exc.read()!r}") from None

    node.start()
    hub = HubProcess(data)
    try:
        poll("the node's RPC", lambda: node.get("/head"), 20, node.log)
        hub.start()
        hub.wait_for(lambda: hub.get("/api/plugins/chain/head")["connected"], 20, what="the light client")
        hub.wait_for(lambda: _outlet(hub) in ("on", "off"), what="the demo plug")
        if _outlet(hub) == "on":
            hub.post("/api/entities/switch.smart_plug/commands/turn_off")
        bound = send("bind_device", {"statement": binding.to_body()})
        poll("the binding in a block", lambda: (node.get(f"/tx/{bound.hex()}") or {}).get("height"), 20, node.log)
        tx = send("control_command", _envelope(net, owner, "turn_on"))
        taken = _taken(hub, tx, timeout=30)
        assert taken["outcome"]["ok"] is True and _outlet(hub) == "on", (taken, hub.log()[-2000:])
        report = node.get(f"/tx/{taken['report_tx']}")
        assert report["type"] == "state_change" and report["payload"]["command"] == tx.hex()
        assert report["status"] == "irreversible"
        hub.wait_for(lambda: [r[2] for r in command_log(data) if r[2].startswith("chain:")] == [f"chain:{tx.hex()[:16]}"],
                     what="the chain command in the command log")
        # `hub chain control --rpc`: the controller sends a command to the node directly.
        (tmp_path / "owner.key").write_text((g / "keys" / "producer-0.key").read_text())
        sent = subprocess.run(hub_command("chain", "control", PLUG_KEY.public_key.hex(), "outlet", "turn_off",
                                          "--rpc", node.url, "--key", str(tmp_path / "owner.key"), "--json"),
                              capture_output=True, text=True, timeout=30)
        assert sent.returncode == 0, sent.stdout + sent.stderr
        by_cli = bytes.fromhex(json.loads(sent.stdout)["hash"])
        assert _taken(hub, by_cli, timeout=30)["outcome"]["ok"] is True and _outlet(hub) == "off"
        assert "Traceback" not in hub.log()
    finally:
        node.close()
        hub.stop()
    assert os.stat(data / "identity" / "identity.db").st_mode & 0o077 == 0


def test_chain_control_cli_names_what_is_wrong(tmp_path):
    from click.testing import CliRunner

    from hub.cli import main

    _genesis(tmp_path / "chain", 200)
    (tmp_path / "not-a-grant.json").write_text('{"kind": "revoke"}')

    def run(*args):
        result = CliRunner().invoke(main, ["chain", "control", *args, "--chain-dir", str(tmp_path / "chain"),
                                           "--key", str(tmp_path / "chain" / "keys" / "producer-0.key")])
        assert result.exit_code == 1, result.output
        return result.output

    assert "DEVICE_KEY" in run("zz", "outlet", "turn_on")
    assert "--grant" in run(PLUG_KEY.public_key.hex(), "outlet", "turn_on", "--grant", str(tmp_path / "not-a-grant.json"))
    assert "entity" in run(PLUG_KEY.public_key.hex(), "x" * 80, "turn_on")
    assert "argument 'oops'" in run(PLUG_KEY.public_key.hex(), "outlet", "turn_on", "oops")
    # Well-formed, but the device is not bound on this chain: refused before anything is queued.
    assert "unbound" in run(PLUG_KEY.public_key.hex(), "outlet", "turn_on", "--wait")

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
import urllib.request
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
_last = [0]


def _counter() -> int:
    """Rising, in microseconds: the scheme `hub device call` and `hub chain control` use."""
    _last[0] = max(_last[0] + 1, int(time.time() * 1_000_000))
    return _last[0]


def _genesis(out: Path, block_ms: int, producers: int = 1) -> None:
    subprocess.run(hub_command("chain", "genesis", "--out", str(out), "--producers", str(producers), "--chain-id",
                               "ctlnet", "--set", f"BLOCK_INTERVAL={block_ms}", "--set", "PRODUCERS=3",
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
                 int(time.time() * 1000) if issued_at is None else issued_at, _counter(), signer.public_key)
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
    (data / "configuration.yaml").write_text(f"hub: {{commit_interval: 0.1}}\nchain:\nidentity:\n  key: {owner_key}\n{DEMO}")
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
        assert taken["outcome"]["value"] == "on"  # the entity's state once the command ran
        assert _outlet(hub) == "on"
        report = hub.get(f"/api/plugins/chain/tx/{taken['report_tx']}")
        assert report["type"] == "state_change" and report["final"] and report["payload"]["command"] == tx.hex()
        assert report["payload"]["ok"] is True and report["sender_key"] == owner.public_key.hex()
        assert report["payload"]["value"] == "on" and report["payload"]["entity"] == "outlet"

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
        assert hub.request("GET", f"/api/plugins/chainctl/commands/{'ab' * 32}")[0] == 404
        state = hub.get("/api/plugins/chainctl/status")
        assert state["chain_id"] == "ctlnet" and state["available"] and state["down"] is None
        assert 0 < state["cursor"] <= state["final"] <= state["head"] and state["unreported"] == 0
        assert "Traceback" not in hub.log()
    finally:
        inbox.close()
        hub.stop()


class Devnet:
    """Two `hub chain node` processes, one producer each, connected peer to peer, each with an RPC:
    the hub follows ``a``; users submit to ``b`` (gossip carries it over)."""

    def __init__(self, root: Path) -> None:
        from hub.chain.devnet_cli import free_ports

        self.root = root
        _genesis(root / "g", 250, producers=2)
        self.genesis = load_genesis(root / "g" / "genesis.json")
        p2p, rpc = free_ports(2), free_ports(2)
        self.urls = [f"http://127.0.0.1:{port}" for port in rpc]
        self.a, self.b = self.urls
        self.procs = []
        for i in range(2):
            with open(root / f"n{i}.log", "a") as log:
                self.procs.append(subprocess.Popen(
                    hub_command("chain", "node", "--genesis", "g/genesis.json", "--data", f"n{i}",
                                "--producer-key", f"g/keys/producer-{i}.key", "--listen", f"127.0.0.1:{p2p[i]}",
                                "--peers", f"127.0.0.1:{p2p[1 - i]}", "--rpc", f"127.0.0.1:{rpc[i]}"),
                    cwd=root, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                    env={**os.environ, "PYTHONUNBUFFERED": "1"}))

    def get(self, url: str, path: str):
        try:
            with urllib.request.urlopen(url + path, timeout=2) as resp:
                return json.loads(resp.read())
        except (OSError, ValueError):
            return None

    def post_tx(self, raw: bytes) -> bytes:
        req = urllib.request.Request(self.b + "/tx", data=json.dumps({"tx": raw.hex()}).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=5) as resp:
                return bytes.fromhex(json.loads(resp.read())["hash"])
        except urllib.error.HTTPError as exc:
            raise AssertionError(f"the node refused the transaction: {exc.read()!r}") from None

    def in_block(self, tx_hash: bytes, timeout: float = 20) -> None:
        deadline = time.monotonic() + timeout
        while not (self.get(self.a, f"/tx/{tx_hash.hex()}") or {}).get("height"):
            assert time.monotonic() < deadline, f"{tx_hash.hex()} not in a block of node a\n{self.logs()}"
            time.sleep(0.1)

    def logs(self) -> str:
        return "\n".join((self.root / f"n{i}.log").read_text(errors="replace")[-2000:] for i in range(2))

    def close(self) -> None:
        from tests.chain.network.test_processes import stop_all

        stop_all(self.procs)


def test_a_hub_following_a_devnet_runs_its_chain_commands_once(tmp_path):
    """Remote mode: two node processes; the hub follows one as a light client (each block checked
    against a verified header) and reports by `POST /tx`; users submit to the other."""
    from hub.chain.access import build_tx

    devnet = Devnet(tmp_path)
    g = tmp_path / "g"
    owner = read_key(g / "keys" / "producer-0.key")
    net = devnet.genesis.network
    data = tmp_path / "hub-data"
    data.mkdir()
    (data / "configuration.yaml").write_text(
        f"hub: {{commit_interval: 0.1}}\nchain:\n  rpc: {devnet.a}\n  genesis: {g / 'genesis.json'}\n"
        f"identity:\n  key: {g / 'keys' / 'producer-0.key'}\n{DEMO}")
    binding = _bind_locally(data, net, owner)
    nonce = iter(range(1, 1000))

    def send(tx_type: str, payload: dict) -> bytes:
        return devnet.post_tx(build_tx(USER, net, devnet.genesis.rules(), tx_type, payload, next(nonce),
                                       int(time.time() * 1000)).raw)

    def chain_runs() -> list[str]:
        return [r[2] for r in command_log(data) if r[2].startswith("chain:")]

    hub = HubProcess(data)
    try:
        deadline = time.monotonic() + 20
        while not all(devnet.get(url, "/head") for url in devnet.urls):
            assert time.monotonic() < deadline, devnet.logs()
            time.sleep(0.1)
        hub.start()
        hub.wait_for(lambda: hub.get("/api/plugins/chain/head")["connected"], 20, what="the light client")
        hub.wait_for(lambda: _outlet(hub) in ("on", "off"), what="the demo plug")
        if _outlet(hub) == "on":
            hub.post("/api/entities/switch.smart_plug/commands/turn_off")
        devnet.in_block(send("bind_device", {"statement": binding.to_body()}))
        tx = send("control_command", _envelope(net, owner, "turn_on"))
        taken = _taken(hub, tx, timeout=30)
        assert taken["outcome"]["ok"] is True and _outlet(hub) == "on", (taken, hub.log()[-2000:])
        report = devnet.get(devnet.b, f"/tx/{taken['report_tx']}")  # the hub sent it to a; b has it too
        assert report["type"] == "state_change" and report["payload"]["command"] == tx.hex()
        assert report["status"] == "irreversible"
        hub.wait_for(lambda: chain_runs() == [f"chain:{tx.hex()[:16]}"], what="the chain command in the command log")

        # `hub chain control --rpc`: the controller sends a command to a node directly.
        (tmp_path / "owner.key").write_text((g / "keys" / "producer-0.key").read_text())
        sent = subprocess.run(hub_command("chain", "control", PLUG_KEY.public_key.hex(), "outlet", "turn_off",
                                          "--rpc", devnet.b, "--key", str(tmp_path / "owner.key"), "--json"),
                              capture_output=True, text=True, timeout=30)
        assert sent.returncode == 0, sent.stdout + sent.stderr
        by_cli = bytes.fromhex(json.loads(sent.stdout)["hash"])
        assert _taken(hub, by_cli, timeout=30)["outcome"]["ok"] is True and _outlet(hub) == "off"

        # The hub is killed; a command reaches the chain while it is down; it comes back, catches
        # up from its cursor, runs that one, and none of the earlier ones again.
        ran = [f"chain:{tx.hex()[:16]}", f"chain:{by_cli.hex()[:16]}"]
        hub.wait_for(lambda: chain_runs() == ran, what="both chain commands recorded")
        hub.kill()
        offline = send("control_command", _envelope(net, owner, "turn_on"))
        devnet.in_block(offline)
        hub.start()
        assert (t := _taken(hub, offline, timeout=30))["outcome"]["ok"] is True, t
        hub.wait_for(lambda: _outlet(hub) == "on", what="the plug on after the restart")
        hub.wait_for(lambda: chain_runs() == ran + [f"chain:{offline.hex()[:16]}"],
                     what="the offline command recorded, once")
        assert "Traceback" not in hub.log()
    finally:
        devnet.close()
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

"""Anchoring to a devnet of separate node processes the hub follows as a light client: the devnet is
stopped while the hub goes on logging commands, then resumed (`hub chain devnet --dir`): everything
logged offline is anchored, each command once, and proofs verify against light-client headers."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path

from hub.chain.node.files import read_key
from hub.chain.node.node import ChainNode
from hub.chain.protocol.genesis import load_genesis
from hub.crypto.address import address_of
from tests.hubproc import DEMO, HubProcess, hub_command, run_cli


def _devnet(root: Path) -> subprocess.Popen:
    log = open(root.parent / "devnet.log", "ab")  # noqa: SIM115 - the child keeps it open
    proc = subprocess.Popen(hub_command("chain", "devnet", "--nodes", "1", "--slot", "0.2", "--dir", str(root),
                                        "--no-live"), stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            state = json.loads((root / "devnet.json").read_text())
            if state.get("supervisor") == proc.pid:
                return proc
        except (OSError, ValueError):
            pass
        time.sleep(0.1)
    raise AssertionError("the devnet did not start:\n" + (root.parent / "devnet.log").read_text())


def _stop(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGTERM)
    proc.wait(30)


def _commands(hub: HubProcess, n: int) -> None:
    for i in range(n):
        hub.request("POST", f"/api/entities/light.living_room/commands/{'turn_on' if i % 2 else 'turn_off'}", {})


def test_commands_logged_while_the_devnet_is_down_are_anchored_once_when_it_is_back(tmp_path: Path) -> None:
    root = tmp_path / "devnet"
    root.mkdir()
    devnet = _devnet(root)
    data = tmp_path / "data"
    data.mkdir()
    rpc = json.loads((root / "devnet.json").read_text())["nodes"][0]["rpc"]
    (data / "configuration.yaml").write_text(
        DEMO + f"chain:\n  rpc: http://127.0.0.1:{rpc}\n  genesis: {root / 'genesis.json'}\n"
        f"identity:\n  key: {root / 'keys' / 'producer-0.key'}\n"  # a funded key pays the anchors
        "anchor:\n  interval: 0.3\n  poll: 0.1\n")
    hub = HubProcess(data).start()
    try:
        _commands(hub, 4)
        hub.wait_for(lambda: hub.get("/api/anchors")["final"] == 4, timeout=40, what="the first anchors final")
        _stop(devnet)
        _commands(hub, 6)  # the chain is gone: logged, waiting
        hub.wait_for(lambda: hub.get("/api/anchors")["logged"] == 10, what="the offline commands logged")
        time.sleep(1.0)
        assert hub.get("/api/anchors")["final"] == 4
        devnet = _devnet(root)  # resumed from its directory
        counts = hub.wait_for(lambda: (c := hub.get("/api/anchors"))["final"] == 10 and c, timeout=60,
                              what="the offline commands anchored once the devnet is back")
        assert counts["anchored"] == 10 and counts["batched"] == 10
        for command_id in (1, 10):
            proof = json.loads(run_cli(data, "device", "log", "verify", str(command_id), "--json").stdout)
            assert proof["verified"] and proof["checked_here"], proof
            assert "light client" in proof["verification"]
    finally:
        hub.stop()
        _stop(devnet)
    node = ChainNode(root / "node-0", load_genesis(root / "genesis.json"))
    try:
        keeper = address_of(read_key(root / "keys" / "producer-0.key").public_key)
        following, batches = node.state.get("clog", keeper)
        counts = [v[1] for k, v in node.state.ns["anchor"].items() if k[:20] == keeper]
        assert following == 10 and sum(counts) == 10 and len(counts) == batches  # each command once
    finally:
        node.close()

"""The command log anchored by a real `hub run` on its embedded chain (fast slots from its genesis):
commands accepted and refused, a kill -9, a restart; every command anchored exactly once on chain,
and `hub device log verify` checks a proof up to the chain's anchor entry."""

from __future__ import annotations

import json
from pathlib import Path

from hub.chain.node.files import write_key
from hub.chain.node.node import ChainNode
from hub.chain.protocol.genesis import load_genesis
from hub.crypto.address import address_of, encode_address
from hub.crypto.keys import PrivateKey
from tests.hubproc import DEMO, HubProcess, run_cli

OWNER = PrivateKey(b"\x61" * 32)


def _chain(data: Path) -> Path:
    chain_dir = data / "chain"
    write_key(chain_dir / "keys" / "owner.key", OWNER)  # the hub's key: it pays the anchors' fees
    out = run_cli(data, "chain", "genesis", "--out", str(chain_dir), "--producers", "1", "--chain-id", "anchors",
                  "--set", "BLOCK_INTERVAL=200", "--set", "PRODUCERS=3",
                  "--balance", f"{encode_address(address_of(OWNER.public_key))}=1000")
    assert out.returncode == 0, out.stderr
    (data / "configuration.yaml").write_text(DEMO + "chain:\nanchor:\n  interval: 0.3\n  poll: 0.1\n")
    return chain_dir


def _commands(hub: HubProcess, n: int) -> None:
    for i in range(n):
        hub.request("POST", f"/api/entities/light.living_room/commands/{'turn_on' if i % 2 else 'turn_off'}", {})
    status, _ = hub.request("POST", "/api/entities/light.nowhere/commands/turn_on", {})
    assert status == 404  # refused, and logged as refused


def _all_final(hub: HubProcess, at_least: int):
    counts = hub.get("/api/anchors")
    return counts if counts["logged"] >= at_least and counts["final"] == counts["logged"] else None


def test_commands_are_anchored_once_across_a_kill_9_and_their_proofs_verify(tmp_path: Path) -> None:
    data = tmp_path / "data"
    chain_dir = _chain(data)
    hub = HubProcess(data).start()
    try:
        _commands(hub, 6)
        hub.wait_for(lambda: _all_final(hub, 7), timeout=30, what="the first commands anchored and final")
        _commands(hub, 5)
        hub.wait_for(lambda: len(hub.get("/api/commands?limit=100")) >= 13,
                     what="the new commands committed")
        hub.kill()  # whatever was under way: a batch cut, submitted, or not yet
        hub = HubProcess(data).start()
        _commands(hub, 3)
        counts = hub.wait_for(lambda: _all_final(hub, 17), timeout=30, what="everything anchored after the restart")
        rows = hub.get("/api/commands?limit=1000")
        assert [r["status"] for r in rows] == ["final"] * counts["logged"]
        refused = next(r for r in rows if not r["ok"])
        verify = run_cli(data, "device", "log", "verify", str(refused["id"]))
        assert verify.returncode == 0, verify.stdout + verify.stderr
        assert "verified" in verify.stdout and "unknown entity" in verify.stdout
        proof = json.loads(run_cli(data, "device", "log", "verify", "1", "--json").stdout)
        assert proof["verified"] and proof["checked_here"] and proof["block"]["final"]
        listed = run_cli(data, "device", "log", "demo:living_room_light")
        assert listed.returncode == 0 and "final" in listed.stdout, listed.stdout + listed.stderr
        assert hub.request("GET", "/api/commands/first/proof")[0] == 422
        assert hub.request("GET", "/api/commands/1/proof", auth=False)[0] == 401
        assert hub.request("GET", "/api/commands?device=demo:nothing")[0] == 404
        missing = run_cli(data, "device", "log", "verify", "99999")
        assert missing.returncode == 1 and "no command 99999" in missing.stderr
    finally:
        hub.stop()
    node = ChainNode(chain_dir, load_genesis(chain_dir / "genesis.json"))
    try:
        keeper = address_of(OWNER.public_key)
        following, batches = node.state.get("clog", keeper)
        entries = sorted((int.from_bytes(k[20:], "big"), v[1]) for k, v in node.state.ns["anchor"].items() if k[:20] == keeper)
        assert following == counts["logged"]  # every command once: no gap, no overlap, nothing twice
        assert sum(c for _, c in entries) == following and len(entries) == batches
    finally:
        node.close()

"""A malicious producer against three honest ``hub chain node`` processes (issue #6).

The rogue (``_rogue.py``, its own process) holds the fourth producer key of the devnet, so what it
signs is as good as any producer's signature. It sends garbage, an oversized frame, blocks with
broken signatures, blocks for slots it does not own, and two blocks for its own slot to two
different nodes. The honest nodes must drop each attacking connection, stay up, agree on one chain,
and turn the equivocation into an ``evidence`` transaction that disqualifies the rogue.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.chain.network._procs import Cluster, wait_for

HONEST = [0, 1, 2]
ROGUE = 3
BUDGET = 90  # seconds


@pytest.fixture
def cluster(tmp_path):
    c = Cluster(tmp_path, 4, block_interval_ms=500)
    try:
        yield c
    finally:
        c.close()


def _rogue(c: Cluster) -> list[dict]:
    root = Path(__file__).resolve().parents[3]
    proc = subprocess.run(
        [sys.executable, "-m", "tests.chain.network._rogue", "--genesis", "g/genesis.json",
         "--key", f"g/keys/producer-{ROGUE}.key", "--data", "rogue",
         "--targets", ",".join(f"127.0.0.1:{c.p2p[i]}" for i in HONEST)],
        cwd=c.root, capture_output=True, text=True, timeout=60,
        env={**os.environ, "PYTHONPATH": f"{root}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"})
    assert proc.returncode == 0, f"the rogue failed:\n{proc.stdout}\n{proc.stderr}\n{c.logs()}"
    return [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]


def _disqualified(c: Cluster, i: int) -> int | None:
    account = c.get(i, f"/accounts/{c.addresses[ROGUE]}")
    return account and account["disqualified_at"]


def test_honest_nodes_drop_a_malicious_producer_and_its_equivocation_becomes_evidence(cluster):
    c = cluster
    deadline = time.monotonic() + BUDGET
    for i in HONEST:
        c.start(i)
    wait_for("the honest nodes past height 8 on one chain",
             lambda: (common := c.common_hash(HONEST)) and common[0] > 8 and len(set(common[1])) == 1, deadline, c)

    report = _rogue(c)
    attacks = {r["attack"]: r for r in report}
    assert set(attacks) == {"garbage", "oversized", "invalid_signature", "out_of_slot", "equivocation"}, report
    for name in ("garbage", "oversized", "invalid_signature", "out_of_slot"):
        assert attacks[name]["dropped"], f"{name}: the honest node kept the connection open: {report}"

    # The evidence is included and every honest node sees the rogue disqualified.
    heights = [wait_for(f"node {i} to see the rogue disqualified", lambda i=i: _disqualified(c, i), deadline, c)
               for i in HONEST]
    assert len(set(heights)) == 1 and heights[0] == attacks["equivocation"]["disqualified_at"], (heights, report)
    txs = [c.get(0, f"/tx/{h}") for h in c.block(0, heights[0])["tx_hashes"]]
    evidence = [tx for tx in txs if tx["type"] == "evidence"]
    assert len(evidence) == 1, txs
    assert evidence[0]["payload"]["first"]["slot"] == attacks["equivocation"]["slot"]

    # Everyone stayed up and still agrees, and the chain goes on without the rogue.
    assert all(c.alive(i) for i in HONEST), c.logs()
    wait_for("the chain to go on past the evidence on one chain",
             lambda: (common := c.common_hash(HONEST)) and common[0] > heights[0] + 3 and len(set(common[1])) == 1,
             deadline, c)
    logs = "\n".join((c.root / f"n{i}.log").read_text() for i in HONEST)
    assert "dropping peer" in logs and "signed two blocks for slot" in logs
    assert "belongs to" in logs  # the out-of-slot blocks were refused for their slot
    assert "signature does not verify" in logs
    assert "Traceback" not in logs

"""The state-write benchmark measures a driver in a real ``hub run``: keep that path working.

Run with tiny numbers; no timing is asserted, only that the burst ran inside the hub with its
subscribers live (the benchmark itself checks the WebSocket client got every event it follows).
"""

import json
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_state_writes.py"


def test_benchmark_runs_a_driver_in_a_real_hub(tmp_path):
    out = subprocess.run(
        [sys.executable, str(BENCH), "--writes", "3000", "--repeats", "1", "--rules", "5", "--ws-entities", "5", "--no-bare"],
        capture_output=True, text=True, timeout=120, cwd=tmp_path,
    )
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert result["hub_median_per_s"] > 0 and result["rules"] == 5 and result["ws_entities"] == 5
    assert result["machine"]["nproc"] >= 1 and result["machine"]["cpu"]

"""The anchoring benchmark runs (small), and its counts hold: transactions per batch, proof length."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

from bench_anchoring import run  # noqa: E402


def test_the_benchmark_anchors_every_command_in_full_batches() -> None:
    result = run(commands=3_000, batch_size=1_000, chunk=700, probes=50)
    assert result["transactions"] == 3 and result["proof_hashes_max"] == 10

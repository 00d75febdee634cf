"""The follow benchmark runs (small), and the market served every call it measured: each call
seen opened a grant and, once its window closed, was returned on chain."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

from bench_market_follow import run  # noqa: E402


def test_the_benchmark_follows_every_contract_and_returns_the_calls() -> None:
    result = run(contracts=300, blocks=25, transfers=10, calls=2, window_blocks=5)
    assert result["live_contracts"] == 300 and result["calls_seen"] == 2 * (25 - 1)  # the last block is not final yet
    assert result["calls_returned"] >= 2 * (25 - 5 - 3)  # all but those whose window or return is still running

"""The cheque benchmark runs (small): every cheque it sends is accepted, in the book and over HTTP."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

from bench_cheques import in_process, over_http  # noqa: E402


def test_the_benchmark_checks_every_cheque(tmp_path) -> None:
    result = in_process(300, 0, tmp_path)
    assert set(result) == {"verify_only_per_s", "book_batch_per_s", "book_single_per_s"}
    result = over_http(300, 0, tmp_path)
    assert set(result) == {"http_batch_per_s", "http_single_per_s"}

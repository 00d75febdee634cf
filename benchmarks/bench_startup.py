"""Time from starting ``hub run`` (demo plugin, embedded default) to its first successful
``GET /api/health``. Issue #2's target: at most 1.5 s.

Measured from the moment the process is spawned, so interpreter start-up and every import count,
as they do for a user. Each run uses a data directory that already exists (a restart, the common
case) except the first, which is reported separately (a fresh install creates the database).
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
from pathlib import Path

from _hubproc import free_port, start, stop, wait_healthy


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "hub-data"
        times = []
        for _ in range(args.runs):
            port = free_port()
            proc = start(data, port)
            try:
                times.append(wait_healthy(proc, port))
            finally:
                stop(proc)
    print(json.dumps({
        "benchmark": "startup_to_health", "runs": args.runs,
        "fresh_s": round(times[0], 3),
        "median_s": round(statistics.median(times[1:] or times), 3),
        "max_s": round(max(times[1:] or times), 3),
        "target_s": 1.5,
    }))


if __name__ == "__main__":
    main()

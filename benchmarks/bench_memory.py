"""Resident memory of ``hub run`` with the demo plugin plus 1,000 extra virtual entities.
Issue #2's target: at most 80 MB.

The hub runs for a while with every entity changing, so the figure includes the history batches,
the bus and the API, not just the imports. Reported: RSS at the end and the peak (VmHWM).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
import urllib.request
from pathlib import Path

from _hubproc import free_port, rss_kib, start, stop, wait_healthy


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entities", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "hub-data"
        data.mkdir()
        (data / "configuration.yaml").write_text(
            f"demo:\n  extra_entities: {args.entities}\n  update_interval: 1\n"
        )
        port = free_port()
        proc = start(data, port)
        try:
            wait_healthy(proc, port)
            token = (data / "owner-token").read_text().strip()
            req = urllib.request.Request(f"http://127.0.0.1:{port}/api/states", headers={"Authorization": f"Bearer {token}"})
            with urllib.request.urlopen(req) as resp:
                count = len(json.loads(resp.read()))
            time.sleep(args.seconds)
            mem = rss_kib(proc.pid)
        finally:
            stop(proc)
    print(json.dumps({
        "benchmark": "memory_rss", "entities": count, "seconds": args.seconds,
        "rss_mb": round(mem["VmRSS"] / 1024, 1), "peak_mb": round(mem["VmHWM"] / 1024, 1), "target_mb": 80,
    }))


if __name__ == "__main__":
    main()

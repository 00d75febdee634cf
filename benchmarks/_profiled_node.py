"""Run ``hub ARGS...`` under cProfile in every thread (the event loop and the worker threads that
``asyncio.to_thread`` uses) and write the merged statistics to OUT when the command returns (a node
returns after SIGTERM). For the chain network benchmarks' ``--profile``; py-spy is not available here.

Times are each thread's CPU time (``time.thread_time``), not wall time: with 5 processes on 2 cores,
wall time mostly measures waiting (for the node lock, for a core, for the GIL), which hides where
the CPU goes.

    python benchmarks/_profiled_node.py OUT chain node --genesis ...
"""

from __future__ import annotations

import cProfile
import pstats
import sys
import threading
import time

# (no sys.path change: the installed hub, or PYTHONPATH, decides which code runs)

_profiles: list[cProfile.Profile] = []
_lock = threading.Lock()


def _start_in_thread(frame, event, arg):  # the first profile event of a new thread: hand over to cProfile
    sys.setprofile(None)
    prof = cProfile.Profile(time.thread_time)
    with _lock:
        _profiles.append(prof)
    prof.enable()


def main() -> None:
    out, args = sys.argv[1], sys.argv[2:]
    from hub.cli import main as hub_main

    threading.setprofile(_start_in_thread)
    prof = cProfile.Profile(time.thread_time)
    _profiles.append(prof)
    prof.enable()
    try:
        hub_main.main(args=args, prog_name="hub", standalone_mode=False)
    finally:
        prof.disable()
        threading.setprofile(None)
        with _lock:
            profiles = list(_profiles)
        stats = None
        for p in profiles:
            try:
                p.create_stats()
                stats = pstats.Stats(p) if stats is None else (stats.add(p) or stats)
            except Exception:  # noqa: BLE001 - a thread that never ran anything
                pass
        if stats is not None:
            stats.dump_stats(out)


if __name__ == "__main__":
    main()

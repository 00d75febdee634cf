"""Start ``hub run`` as a user would, for the start-up and memory benchmarks."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from hub.net.ports import free_port  # below the ephemeral range: no close-then-bind race


def hub_executable() -> list[str]:
    script = Path(sys.executable).parent / "hub"
    return [str(script)] if script.exists() else [sys.executable, "-m", "hub.cli"]


def start(data: Path, port: int, *, plugins_dir: Path | None = None, core: int | None = None) -> subprocess.Popen:
    """``core`` pins the process, and every thread it starts, to one CPU (as a target "on one core"
    means); it is set before the interpreter starts, so its threads inherit it."""
    args = [*hub_executable(), "run", "--data", str(data), "--port", str(port)]
    if plugins_dir is not None:
        args += ["--plugins-dir", str(plugins_dir)]
    pin = (lambda: os.sched_setaffinity(0, {core})) if core is not None and hasattr(os, "sched_setaffinity") else None
    return subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env={**os.environ}, preexec_fn=pin)


def wait_healthy(proc: subprocess.Popen, port: int, timeout: float = 30.0, poll: float = 0.005) -> float:
    """Seconds until the first successful ``GET /api/health``."""
    started = time.perf_counter()
    url = f"http://127.0.0.1:{port}/api/health"
    while time.perf_counter() - started < timeout:
        if proc.poll() is not None:
            raise RuntimeError(f"hub exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=1) as resp:
                if resp.status == 200:
                    return time.perf_counter() - started
        except OSError:
            time.sleep(poll)
    raise RuntimeError("hub did not become healthy")


def stop(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def rss_kib(pid: int) -> dict[str, int]:
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            fields[key] = int(value.split()[0])
    return fields

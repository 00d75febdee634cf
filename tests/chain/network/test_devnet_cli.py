"""``hub chain devnet`` and ``hub chain status`` as a user runs them: real processes on loopback.

The devnet is started in its own process group so that, whatever a test does, teardown can kill it
and every node it started (the nodes stay in the devnet's group) without touching anything else.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

HUB = [sys.executable, "-m", "hub.cli"]
LINE = re.compile(r"^(node-\d+) (\S+) height=(\d+) lib=(\d+)", re.M)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie is gone for our purposes: it no longer runs (its parent just has not reaped it yet)
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


@pytest.fixture
def spawn():
    """Start ``hub ...`` in a new process group; on teardown kill whatever of the group is left."""
    procs: list[subprocess.Popen] = []

    def start(*args: str, **kw) -> subprocess.Popen:
        p = subprocess.Popen([*HUB, *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                             start_new_session=True, env={**os.environ, "PYTHONUNBUFFERED": "1"}, **kw)
        procs.append(p)
        return p

    yield start
    for p in procs:
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        try:
            p.wait(5)
        except subprocess.TimeoutExpired:
            pass


def _node_pids(output: str) -> list[int]:
    return [int(m) for m in re.findall(r"^node-\d+: rpc .* pid (\d+)", output, re.M)]


def test_devnet_runs_three_producers_and_stops_them(tmp_path, spawn):
    root = tmp_path / "net"
    proc = spawn("chain", "devnet", "--nodes", "3", "--slot", "0.5", "--no-live", "--seconds", "4", "--dir", str(root))
    out, _ = proc.communicate(timeout=40)
    assert proc.returncode == 0, out
    pids = _node_pids(out)
    assert len(pids) == 3, out
    final = out.split("final:")[-1]
    rows = LINE.findall(final)
    assert [r[0] for r in rows] == ["node-0", "node-1", "node-2"], out
    for node, state, height, lib in rows:
        assert state == "up" and int(height) > 3, out
        assert int(lib) <= int(height)
    # The genesis leaves the nodes time to start: nobody misses the first slots (a 24 h ban each).
    assert re.findall(r"misses=(\S+)", final) == ["0"] * 3, out
    assert (root / "genesis.json").exists() and all((root / f"node-{i}.log").exists() for i in range(3))
    assert not [p for p in pids if _alive(p)], "a node outlived the devnet"


def test_status_of_a_devnet_node(tmp_path, spawn):
    root = tmp_path / "net"
    proc = spawn("chain", "devnet", "--nodes", "2", "--slot", "0.5", "--no-live", "--seconds", "8", "--dir", str(root))
    lines = []
    for line in proc.stdout:  # the node lines come first, before any status
        lines.append(line)
        if len(_node_pids("".join(lines))) == 2:
            break
    url = re.search(r"^node-1: rpc (\S+)", "".join(lines), re.M).group(1)
    deadline = time.monotonic() + 15
    while True:
        assert time.monotonic() < deadline, "the node's RPC did not come up"
        try:
            with urllib.request.urlopen(f"{url}/head", timeout=1) as reply:
                if b'"height"' in reply.read():
                    break
        except OSError:
            time.sleep(0.2)
    shown = subprocess.run([*HUB, "chain", "status", "--rpc", url], capture_output=True, text=True, timeout=20,
                           env={**os.environ, "COLUMNS": "120"})
    assert shown.returncode == 0, shown.stderr
    for label in ("height", "last irreversible", "round", "next producer", "produced", "missed"):
        assert label in shown.stdout, shown.stdout
    as_json = subprocess.run([*HUB, "chain", "status", "--rpc", url, "--json"], capture_output=True, text=True, timeout=20)
    assert as_json.returncode == 0, as_json.stderr
    data = json.loads(as_json.stdout)
    assert data["head"]["height"] >= 0 and len(data["schedule"]["producers"]) == 2
    assert data["head"]["clock"]["state"] in ("unknown", "ok")  # the node judges its clock from peers' blocks
    rest, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, "".join(lines) + rest
    assert not [p for p in _node_pids("".join(lines)) if _alive(p)]


def test_status_names_an_unreachable_url():
    r = subprocess.run([*HUB, "chain", "status", "--rpc", "http://127.0.0.1:1"], capture_output=True, text=True, timeout=20)
    assert r.returncode == 1
    assert "http://127.0.0.1:1" in r.stderr


def _read_until(proc: subprocess.Popen, lines: list[str], pattern: str, deadline: float) -> re.Match:
    while True:
        found = re.search(pattern, "".join(lines), re.M)
        if found:
            return found
        assert time.monotonic() < deadline, "".join(lines)
        line = proc.stdout.readline()
        assert line, "".join(lines)
        lines.append(line)


def test_devnet_restarts_one_node_prints_command_lines_and_resumes(tmp_path, spawn):
    root = tmp_path / "net"
    proc = spawn("chain", "devnet", "--nodes", "2", "--slot", "0.5", "--no-live", "--seconds", "10", "--dir", str(root))
    lines: list[str] = []
    deadline = time.monotonic() + 30
    _read_until(proc, lines, r"^restart one node: hub chain devnet restart", deadline)
    out = "".join(lines)
    commands = re.findall(r"^  command: (.*)$", out, re.M)
    assert len(commands) == 2 and all(" chain node --genesis " in c and "--rpc 127.0.0.1:" in c for c in commands), out
    old = _node_pids(out)
    _read_until(proc, lines, r"^node-1 up height=[1-9]", deadline)  # running and producing

    again = subprocess.run([*HUB, "chain", "devnet", "restart", "--dir", str(root), "--node", "1"],
                           capture_output=True, text=True, timeout=40)
    assert again.returncode == 0, again.stdout + again.stderr
    new_pid = int(re.search(r"pid \d+ -> (\d+)", again.stdout).group(1))
    assert new_pid != old[1] and _alive(new_pid) and not _alive(old[1]) and _alive(old[0])
    rest, _ = proc.communicate(timeout=40)
    out = "".join(lines) + rest
    assert proc.returncode == 0, out
    final = LINE.findall(out.split("final:")[-1])
    assert [r[1] for r in final] == ["up", "up"], out
    assert (root / "node-1.log").read_text().count("=== started again") == 1
    assert not _alive(new_pid)
    height_before = int(final[0][2])

    # Asking a stopped devnet to restart a node says how to resume it; resuming it keeps its chain.
    stopped = subprocess.run([*HUB, "chain", "devnet", "restart", "--dir", str(root), "--node", "0"],
                             capture_output=True, text=True, timeout=20)
    assert stopped.returncode == 1 and f"hub chain devnet --dir {root}" in stopped.stderr
    different = subprocess.run([*HUB, "chain", "devnet", "--dir", str(root), "--nodes", "3"],
                               capture_output=True, text=True, timeout=20)
    assert different.returncode == 1 and "--nodes 3" in different.stderr
    resumed = spawn("chain", "devnet", "--dir", str(root), "--no-live", "--seconds", "8")
    out, _ = resumed.communicate(timeout=40)
    assert resumed.returncode == 0 and "resuming its 2 node(s)" in out, out
    final = LINE.findall(out.split("final:")[-1])
    assert [r[1] for r in final] == ["up", "up"] and int(final[0][2]) > height_before, out

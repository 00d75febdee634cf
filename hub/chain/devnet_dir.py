"""A devnet's directory as the record of a running (or stopped) devnet: ``devnet.json``.

``hub chain devnet`` writes it when it starts its nodes and whenever one restarts: the slot length,
each node's ports, public key, pid and command line, and the supervising process's pid (null once
it stopped). With it, ``hub chain devnet --dir DIR`` resumes a stopped devnet on the same ports and
data, and ``hub chain devnet restart --dir DIR --node I`` asks the running supervisor to restart one
node: it leaves a marker file (``node-I.restart``) that the supervisor acts on within a quarter
second, and waits for the new pid. The supervisor, which owns the node processes, stays the one
place that starts and stops them.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import click

STATE_FILE = "devnet.json"


def state_path(root: Path) -> Path:
    return root / STATE_FILE


def read_state(root: Path) -> dict | None:
    try:
        return json.loads(state_path(root).read_text())
    except FileNotFoundError:
        return None
    except ValueError as exc:
        raise ValueError(f"{state_path(root)} is damaged ({exc}); move it away to start a new devnet there") from None


def write_state(root: Path, state: dict) -> None:
    tmp = state_path(root).with_suffix(".tmp")
    tmp.write_text(json.dumps(state, indent=2) + "\n")
    os.replace(tmp, state_path(root))  # a reader never sees half a file


def alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie no longer runs
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
    except OSError:
        return True


def marker(root: Path, index: int) -> Path:
    return root / f"node-{index}.restart"


@click.command("restart")
@click.option("--dir", "root", required=True, type=click.Path(file_okay=False, exists=True, path_type=Path),
              help="The running devnet's directory.")
@click.option("--node", "index", required=True, type=click.IntRange(0), help="Which node (node-I).")
def restart(root: Path, index: int) -> None:
    """Restart one node of a running devnet (SIGTERM, then the same command line and data)."""
    import time

    from hub.chain.devnet_cli import STOP_TIMEOUT, _fail

    try:
        state = read_state(root)
    except ValueError as exc:
        _fail(str(exc))
    if state is None or not alive(state.get("supervisor")):
        _fail(f"no devnet is running from {root}; `hub chain devnet --dir {root}` resumes it")
    if index >= len(state["nodes"]):
        _fail(f"--node {index}: the devnet in {root} has nodes 0 to {len(state['nodes']) - 1}")
    old = state["nodes"][index]["pid"]
    marker(root, index).touch()
    deadline = time.monotonic() + STOP_TIMEOUT + 15
    while marker(root, index).exists():
        if time.monotonic() > deadline or not alive(state["supervisor"]):
            marker(root, index).unlink(missing_ok=True)
            _fail(f"the devnet running from {root} did not restart node-{index}")
        time.sleep(0.1)
    new = read_state(root)["nodes"][index]
    click.echo(f"node-{index}: restarted (pid {old} -> {new['pid']}); rpc http://127.0.0.1:{new['rpc']}")

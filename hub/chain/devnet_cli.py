"""``hub chain status`` and ``hub chain devnet``: watch a node, or run a throwaway network of them (issue #6).

Both only talk to nodes over their HTTP RPC (``/head`` and ``/schedule``), with the standard
library's urllib: the same view works for a node on this machine or on another one, and the CLI
does not need the RPC's client-side test dependencies. Imported by ``hub/chain/cli.py`` on every
``hub`` run, so nothing heavy is imported at module level.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

RPC_TIMEOUT = 2.0
STOP_TIMEOUT = 15.0  # a node gets this long after SIGTERM to close its store (its own deadline is 10 s + 2 s) before it is killed
START_LEAD_MS = 3000  # genesis this far after the nodes are started, so no node misses slot 1
START_MS_PER_NODE = 400  # and this much more per node: each is a Python process starting on the same cores
START_PER_GENESIS = 1.5  # or, when more, this many times what `hub chain genesis` took (the machine is loaded)


class Unreachable(Exception):
    """The node did not give a usable answer; the message names the URL, for the user to check."""


def _base(url: str) -> str:
    url = url.strip().rstrip("/")
    return url if "://" in url else f"http://{url}"


def _get(url: str, path: str, timeout: float) -> dict:
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(f"{url}{path}", timeout=timeout) as reply:
            return json.loads(reply.read())
    except urllib.error.HTTPError as exc:
        raise Unreachable(f"the node at {url} answered {path} with HTTP {exc.code}") from None
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise Unreachable(f"cannot reach the node at {url} ({reason})") from None


def fetch_status(url: str, timeout: float = RPC_TIMEOUT) -> dict:
    """One request each to ``/head`` and ``/schedule``: cheap enough to poll every second."""
    url = _base(url)
    return {"rpc": url, "head": _get(url, "/head", timeout), "schedule": _get(url, "/schedule", timeout)}


def _short(address: str | None) -> str:
    return "" if not address else f"{address[:9]}…{address[-4:]}"


def _when(ms: int | None) -> str:
    import time

    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ms / 1000)) if ms else ""


def _clock(clock: dict | None) -> str | None:
    """The node's clock against its peers' blocks (hub/chain/node/clockwatch.py)."""
    if not clock or clock.get("skew_ms") is None:
        return None
    skew = clock["skew_ms"] / 1000
    if clock.get("state") == "ok":
        return f"ok ({skew:+.2f} s from peers' blocks)"
    return f"{abs(skew):.1f} s {clock['state']}: fix the system clock, or this producer misses slots and is banned"


def _print_status(status: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    head, sched = status["head"], status["schedule"]
    summary = Table(title=f"Node {status['rpc']}", show_header=False)
    summary.add_column(style="bold")
    summary.add_column()
    for label, value in [("chain", head.get("chain_id")), ("height", head["height"]),
                         ("head hash", head["hash"][:16]), ("last irreversible", head["lib"]["height"]),
                         ("round", head["round"]), ("slot", head["slot"]), ("next slot", sched.get("next_slot")),
                         ("next producer", sched.get("next_producer")), ("mempool", head.get("mempool")),
                         ("clock", _clock(head.get("clock")))]:
        summary.add_row(label, "" if value is None else str(value))
    order = Table(title=f"Schedule, round {sched['round']}", header_style="bold")
    for col in ["#", "address", "name", "produced", "missed", "banned until", "disqualified"]:
        order.add_column(col, overflow="fold", no_wrap=col == "address")
    for r in sched["producers"]:
        order.add_row(str(r["position"]), r["address"], r["name"] or "", str(r["produced"]), str(r["missed"]),
                      _when(r["banned_until"]), "yes" if r["disqualified"] else "")
    console = Console()
    console.print(summary)
    console.print(order)


@click.command("status")
@click.option("--rpc", "rpc_url", required=True, metavar="URL", help="The node's RPC, e.g. http://127.0.0.1:9800.")
@click.option("--json", "as_json", is_flag=True, help="Print the raw /head and /schedule answers as JSON.")
def status(rpc_url: str, as_json: bool) -> None:
    """Head, last irreversible block, round, slot and this round's schedule of any node."""
    try:
        data = fetch_status(rpc_url)
    except Unreachable as exc:
        click.secho(f"Error: {exc}", fg="red", err=True)
        sys.exit(1)
    if as_json:
        click.echo(json.dumps(data, indent=2))
    else:
        _print_status(data)


# --- devnet ------------------------------------------------------------------------------------------


def free_ports(n: int) -> list[int]:
    """Ports for the nodes: below the kernel's ephemeral range, so no outgoing connection takes one
    before its node binds it (hub.net.ports)."""
    from hub.net.ports import free_ports as pick

    return pick(n)


class _Node:
    """One node process and what the table needs of it; a dead process is a row, not an error."""

    def __init__(self, index: int, root: Path, p2p: int, rpc: int, public_key: str) -> None:
        self.index, self.root, self.p2p, self.rpc, self.public_key = index, root, p2p, rpc, public_key
        self.proc = None
        self.last: dict | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.rpc}"

    def command(self, peers: list[int]) -> list[str]:
        """The node's command line: printed, so a user can run this node by hand."""
        return [sys.executable, "-m", "hub.cli", "chain", "node", "--genesis", str(self.root / "genesis.json"),
                "--data", str(self.root / f"node-{self.index}"),
                "--producer-key", str(self.root / "keys" / f"producer-{self.index}.key"),
                "--listen", f"127.0.0.1:{self.p2p}", "--peers", ",".join(f"127.0.0.1:{p}" for p in peers),
                "--rpc", f"127.0.0.1:{self.rpc}"]

    def start(self, peers: list[int], append: bool = False) -> None:
        import os
        import subprocess
        import time

        log = open(self.root / f"node-{self.index}.log", "a" if append else "w")  # noqa: SIM115 - the child keeps it open
        if append:
            log.write(f"=== started again at {time.strftime('%Y-%m-%d %H:%M:%S')}\n")
            log.flush()
        with log:
            self.proc = subprocess.Popen(self.command(peers), stdout=log, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, env={**os.environ, "PYTHONUNBUFFERED": "1"})

    def poll(self, timeout: float = 0.8) -> dict:
        """A row of the table; ``state`` is up, starting (alive, RPC not answering yet) or down."""
        row = {"node": f"node-{self.index}", "rpc": self.url, "pid": self.proc.pid if self.proc else None}
        code = self.proc.poll() if self.proc else None
        if code is not None:
            return {**row, "state": f"down (exit {code})", **self._numbers(self.last)}
        try:
            self.last = fetch_status(self.url, timeout=timeout)
        except Unreachable:
            return {**row, "state": "starting" if self.last is None else "no answer", **self._numbers(self.last)}
        return {**row, "state": "up", **self._numbers(self.last)}

    def _numbers(self, data: dict | None) -> dict:
        if data is None:
            return {}
        head, sched = data["head"], data["schedule"]
        mine = [r for r in sched["producers"] if r.get("public_key") == self.public_key]
        return {"height": head["height"], "lib": head["lib"]["height"], "round": head["round"], "slot": head["slot"],
                "next_producer": sched.get("next_producer"), "misses": mine[0]["missed"] if mine else None}


COLUMNS = [("node", "node"), ("state", "status"), ("height", "height"), ("lib", "LIB"), ("round", "round"),
           ("slot", "slot"), ("next_producer", "next producer"), ("misses", "misses")]  # RPC addresses are printed above


def _render(rows: list[dict], note: str):
    from rich.table import Table

    t = Table(title=f"Devnet ({note})", header_style="bold")
    for _, label in COLUMNS:
        t.add_column(label, no_wrap=True)
    for r in rows:
        style = "green" if r["state"] == "up" else "red" if r["state"].startswith("down") else "yellow"
        values = [_short(r.get(k)) if k == "next_producer" else r.get(k) for k, _ in COLUMNS]
        t.add_row(*["" if v is None else str(v) for v in values], style=style)
    return t


def _line(r: dict) -> str:
    return (f"{r['node']} {r['state']} height={r.get('height', '-')} lib={r.get('lib', '-')} "
            f"round={r.get('round', '-')} slot={r.get('slot', '-')} next={r.get('next_producer') or '-'} "
            f"misses={r.get('misses', '-')} rpc={r['rpc']}")


def _poll_all(nodes: list[_Node], pool, timeout: float = 0.8) -> list[dict]:
    return list(pool.map(lambda n: n.poll(timeout), nodes))


def _state(nodes: list[_Node], slot: float, supervisor: int | None) -> dict:
    return {"supervisor": supervisor, "slot": slot,
            "nodes": [{"index": n.index, "p2p": n.p2p, "rpc": n.rpc, "public_key": n.public_key,
                       "pid": n.proc.pid if n.proc else None,
                       "command": n.command([m.p2p for m in nodes if m is not n])} for n in nodes]}


def _restart_marked(nodes: list[_Node], root: Path, slot: float) -> None:
    """Restart the nodes ``hub chain devnet restart`` asked for (a marker file each)."""
    import os

    from hub.chain.devnet_dir import marker, write_state

    for n in nodes:
        if not marker(root, n.index).exists():
            continue
        _stop_all([n])
        n.start([m.p2p for m in nodes if m is not n], append=True)
        write_state(root, _state(nodes, slot, os.getpid()))
        marker(root, n.index).unlink(missing_ok=True)
        click.echo(f"node-{n.index}: restarted, pid {n.proc.pid}")


def _stop_all(nodes: list[_Node]) -> None:
    """SIGTERM first so each node closes its store cleanly; kill only the ones that hang."""
    import signal
    import subprocess
    import time

    live = [n.proc for n in nodes if n.proc is not None and n.proc.poll() is None]
    for p in live:
        try:
            p.send_signal(signal.SIGTERM)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + STOP_TIMEOUT
    for p in live:
        try:
            p.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(5)


@click.group("devnet", invoke_without_command=True)
@click.option("--nodes", "count", type=click.IntRange(1, 50), help="Producers, one node each (default 3).")
@click.option("--slot", type=click.FloatRange(0.1, 60), help="Block interval in seconds (default 1).")
@click.option("--dir", "root", type=click.Path(file_okay=False, path_type=Path),
              help="Where genesis, keys, node data and logs go (default: a new temporary directory); "
                   "a stopped devnet's directory resumes it.")
@click.option("--base-port", type=click.IntRange(1024, 65000),
              help="Node i listens on P+2i (p2p) and P+2i+1 (RPC); default: free ports from the OS.")
@click.option("--no-live", is_flag=True, help="Print a plain status line per node every few seconds (no TTY needed).")
@click.option("--seconds", type=click.FloatRange(0, min_open=True),
              help="Stop by itself this many seconds after the first slot (after starting, when resuming).")
@click.pass_context
def devnet(ctx: click.Context, count: int | None, slot: float | None, root: Path | None, base_port: int | None,
           no_live: bool, seconds: float | None) -> None:
    """Run N producer nodes on loopback to try the chain; Ctrl-C stops them all.

    Run again with the same --dir to resume a stopped devnet; `hub chain devnet restart --dir DIR
    --node I` restarts one node of a running one."""
    import os
    import signal
    import tempfile
    import threading
    import time
    from concurrent.futures import ThreadPoolExecutor

    from hub.chain.devnet_dir import alive, read_state, write_state

    if ctx.invoked_subcommand is not None:
        return
    saved = None
    if root is not None and (root / "genesis.json").exists():
        try:
            saved = read_state(root)
        except ValueError as exc:
            _fail(str(exc))
        if saved is None:
            _fail(f"{root} holds a chain but no {root / 'devnet.json'}: it is not a devnet's directory "
                  "(or one from before devnets could resume); choose another --dir")
        if alive(saved.get("supervisor")):
            _fail(f"a devnet is already running from {root} (pid {saved['supervisor']}); "
                  f"`hub chain devnet restart --dir {root} --node I` restarts one of its nodes")
        for given, name, kept in ((count, "--nodes", len(saved["nodes"])), (slot, "--slot", saved["slot"])):
            if given is not None and given != kept:
                _fail(f"{name} {given:g}: the devnet in {root} has {name} {kept:g}; leave it out to resume it")
        count, slot = len(saved["nodes"]), saved["slot"]
    count = 3 if count is None else count
    slot = 1.0 if slot is None else slot
    root = Path(tempfile.mkdtemp(prefix="ruff-devnet-")) if root is None else root
    root.mkdir(parents=True, exist_ok=True)
    first_slot = time.time()
    if saved is None:
        nodes, first_slot = _new_devnet(root, count, slot, base_port)
    else:
        nodes = [_Node(n["index"], root, n["p2p"], n["rpc"], n["public_key"]) for n in saved["nodes"]]
        click.echo(f"devnet directory: {root}; resuming its {count} node(s) on their ports")
    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        import shlex

        for n in nodes:
            n.start([m.p2p for m in nodes if m is not n], append=saved is not None)
            click.echo(f"node-{n.index}: rpc {n.url}  p2p 127.0.0.1:{n.p2p}  pid {n.proc.pid}  log {root}/node-{n.index}.log")
            click.echo(f"  command: {shlex.join(n.command([m.p2p for m in nodes if m is not n]))}")
        write_state(root, _state(nodes, slot, os.getpid()))
        click.echo(f"restart one node: hub chain devnet restart --dir {root} --node I; "
                   f"resume after stopping: hub chain devnet --dir {root}")
        end = time.monotonic() + max(0.0, first_slot - time.time()) + seconds if seconds is not None else None
        note = "Ctrl-C stops" if seconds is None else f"stops after {seconds:g} s"

        def wait(interval: float) -> bool:
            """Sleep until the next refresh, restarting the nodes asked for meanwhile; False once
            it is time to stop."""
            until = time.monotonic() + interval
            while not stop.is_set():
                _restart_marked(nodes, root, slot)
                left = until - time.monotonic() if end is None else min(until, end) - time.monotonic()
                if left <= 0:
                    break
                stop.wait(min(0.25, left))
            return not stop.is_set() and (end is None or time.monotonic() < end)

        with ThreadPoolExecutor(max_workers=count) as pool:
            if no_live:
                while wait(2.0):
                    for r in _poll_all(nodes, pool):
                        click.echo(_line(r))
                    click.echo("", nl=True)
                rows = _poll_all(nodes, pool, RPC_TIMEOUT)  # printed once: a busy node gets longer to answer
                click.echo("final:")
                for r in rows:
                    click.echo(_line(r))
            else:
                from rich.live import Live

                with Live(_render(_poll_all(nodes, pool), note), refresh_per_second=4, auto_refresh=False) as live:
                    while wait(1.0):
                        live.update(_render(_poll_all(nodes, pool), note), refresh=True)
    finally:
        click.echo("\nstopping the nodes…")
        _stop_all(nodes)
        write_state(root, _state(nodes, slot, None))
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    click.echo(f"stopped; data and logs are in {root}; `hub chain devnet --dir {root}` resumes it")


def _fail(message: str) -> None:
    click.secho(f"Error: {message}", fg="red", err=True)
    sys.exit(1)


def _new_devnet(root: Path, count: int, slot: float, base_port: int | None) -> tuple[list[_Node], float]:
    """Write the genesis and keys of a new devnet in ``root``; its nodes, not started yet, and the
    first slot's time (unix s)."""
    import subprocess
    import time

    from hub.chain.protocol.genesis import parse_genesis

    began = time.monotonic()
    made = subprocess.run([sys.executable, "-m", "hub.cli", "chain", "genesis", "--out", str(root),
                           "--producers", str(count), "--set", f"BLOCK_INTERVAL={round(slot * 1000)}"],
                          capture_output=True, text=True)
    if made.returncode != 0:
        _fail(f"could not write the genesis in {root}:\n{made.stderr.strip()}")
    # Genesis a little in the future, so every node is up before the first slot: a slot missed at
    # start-up would ban its producer for 24 h (DESIGN.md) before the devnet has done anything. The
    # genesis command was a Python process starting the hub on these cores, as each node is about to:
    # on a loaded machine it took longer, and so will they, so the lead grows with it.
    took_ms = (time.monotonic() - began) * 1000
    start_lead_ms = START_LEAD_MS + count * max(START_MS_PER_NODE, round(START_PER_GENESIS * took_ms))
    path = root / "genesis.json"
    data = json.loads(path.read_text())
    data["genesis_time"] = time.time_ns() // 1_000_000 + start_lead_ms
    path.write_text(parse_genesis(data, str(path)).to_json())
    click.echo(f"devnet directory: {root}; the first slot starts in {start_lead_ms / 1000:.1f} s")
    ports = ([base_port + i for i in range(2 * count)] if base_port is not None else free_ports(2 * count))
    nodes = []
    for i in range(count):
        key = json.loads((root / "keys" / f"producer-{i}.key").read_text())["public_key"]
        nodes.append(_Node(i, root, ports[2 * i], ports[2 * i + 1], key))
    return nodes, data["genesis_time"] / 1000


from hub.chain.devnet_dir import restart as _restart_command  # noqa: E402 - defined apart, registered here

devnet.add_command(_restart_command)

"""The README's market walkthrough, run exactly as printed against a real ``hub run`` on its
embedded chain: the owner binds and offers the demo plug, a renter with its own key rents it,
switches it on with its key, ends the rental, and reviews it; the owner sees its earnings. Then the
balances on chain must be what the terms say, to the unit.

The commands are taken from README.md's "Market" section and run in one bash (as a user pastes
them: the shell variables carry ids from one command to the next) in a directory laid out as the
README assumes: ``.venv/bin/hub`` and ``hub-data/``. Only the chain is made fast (200 ms blocks, a
genesis written before the hub's first start), so the walkthrough takes seconds, not minutes.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from hub.chain.node.files import read_key, write_key
from hub.chain.node.store import ChainStore
from hub.crypto.address import address_of, encode_address
from hub.crypto.keys import PrivateKey
from tests.hubproc import DEMO, HubProcess, run_cli

README = Path(__file__).resolve().parents[1] / "README.md"
RUFF = 10**6


def walkthrough() -> list[str]:
    text = README.read_text()
    section = text[text.index("## Market"):]
    block = re.search(r"```sh\n(.*?)```", section, re.S).group(1)
    return [line for line in block.splitlines() if line.strip()]


def test_the_walkthrough_is_about_a_dozen_commands():
    commands = walkthrough()
    assert 8 <= len(commands) <= 14
    assert all(re.sub(r"^[A-Z]+=\$\(", "", c).startswith((".venv/bin/hub ", "cp ")) for c in commands), commands


def test_readme_market_walkthrough_runs_and_moves_balances_as_the_terms_say(tmp_path):
    home = tmp_path  # the user's checkout: .venv/bin/hub and hub-data/ side by side
    (home / ".venv" / "bin").mkdir(parents=True)
    (home / ".venv" / "bin" / "hub").symlink_to(Path(sys.executable).with_name("hub"))
    data = home / "hub-data"
    chain = data / "chain"
    (chain / "keys").mkdir(parents=True)
    owner = PrivateKey.generate()
    write_key(chain / "keys" / "owner.key", owner)
    made = run_cli(data, "chain", "genesis", "--out", str(chain), "--producers", "1", "--chain-id", "readme",
                   "--set", "BLOCK_INTERVAL=200", "--balance", f"{encode_address(address_of(owner.public_key))}=1000")
    assert made.returncode == 0, made.stderr
    (data / "configuration.yaml").write_text(DEMO + "chain:\n")
    hub = HubProcess(data).start()
    try:
        out = run_walkthrough(home, hub)
        assert "access granted" in out and "fee of the call transaction" in out
        assert "control it: hub device call demo:smart_plug outlet turn_" in out  # the hub's id for the device
        assert hub.get("/api/states/switch.smart_plug")["value"] == "on"  # the renter's signed command
        offers = run_cli(home / "hub-data", "market", "offers")
        # The next renter is warned (the review made it 1 negative of 1 returned call).
        assert "many negative reviews (contract: 1 negative of 1 returned (100%)" in offers.stderr, offers.stderr

        earnings = hub.get("/api/market/earnings")
        assert [(e["device"], e["amount"]) for e in earnings] == [("demo:smart_plug", 1 * RUFF)]
        [contract] = hub.get("/api/market/contracts")
        renter = read_key(home / "renter.key")
        store = ChainStore(chain)
        try:
            call = bytes.fromhex(earnings[0]["call"])
            record = store.state_value("call", call)
            assert record[6] == "returned" and record[7] == 1 * RUFF  # one 10-minute window of 1 RUFF used
            assert tuple(store.state_value("rev", bytes.fromhex(contract["id"]))) == (1, 1)  # returned, negative
            fees, types = _fees_paid(store, renter.public_key)
            balance = store.state_value("acct", address_of(renter.public_key))[0]
            owner_fees, owner_types = _fees_paid(store, owner.public_key)
            owner_balance = store.state_value("acct", address_of(owner.public_key))[0]
        finally:
            store.close()
        # 20 RUFF sent; the call's deposit of 3 went to escrow, 1 was used, 2 came back; fees paid.
        assert types == ["call", "review"]
        assert balance == 20 * RUFF - 1 * RUFF - fees
        # The owner (not the producer here): 1,000 RUFF at genesis, 20 sent, the 1 RUFF used earned.
        assert {"bind_device", "create_contract", "transfer", "return"} <= set(owner_types)
        assert owner_balance == 1000 * RUFF - 20 * RUFF + 1 * RUFF - owner_fees
    finally:
        hub.stop()


def run_walkthrough(home: Path, hub: HubProcess) -> str:
    """Each command in bash, as typed in a terminal: its own stdin (a "y" for a command that asks
    before signing), and a ``NAME=$(...)`` line's value carried to the next commands as the shell
    would, through the environment."""
    env = {**os.environ, "COLUMNS": "200"}
    out = []
    for line in walkthrough():
        assigned = re.match(r"^([A-Z]+)=\$\(", line)
        script = "set -euo pipefail\n" + line + (f'\nprintf "%s" "${assigned.group(1)}"' if assigned else "")
        done = subprocess.run(["bash", "-c", script], cwd=home, input="y\n", capture_output=True, text=True,
                              timeout=120, env=env)
        out.append(f"$ {line}\n{done.stdout}{done.stderr}")
        assert done.returncode == 0, "\n".join(out) + "\n--- hub log ---\n" + hub.log()[-4000:]
        if assigned:
            env[assigned.group(1)] = done.stdout.strip()
    return "\n".join(out)


def _fees_paid(store: ChainStore, sender: bytes) -> tuple[int, list[str]]:
    """The fees of every transaction the key ``sender`` has in the canonical chain, and their types."""
    from hub.chain.protocol.tx import Transaction

    total, types = 0, []
    for h in range(1, store.head().height + 1):
        for raw in store.canonical_block(h).txs:
            tx = Transaction.from_bytes(raw)
            if tx.sender == sender:
                total += tx.fee
                types.append(tx.type)
    return total, types

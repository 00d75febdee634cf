"""Helpers of ``hub chain``: reading the chain directory, queueing signed transactions, formatting.

Kept apart from the command definitions so ``hub/chain/cli.py`` stays a readable list of commands;
imported only when a chain command runs.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import click

from hub.chain.format import ruff as _ruff  # noqa: F401 - the commands' name for it

DEFAULT_KEY = "owner.key"


def _fail(message: str) -> None:
    click.secho(f"Error: {message}", fg="red", err=True)
    sys.exit(1)


def _table(title: str, columns: list[str], rows: list[list[Any]]) -> None:
    from rich.console import Console
    from rich.table import Table

    t = Table(title=title, header_style="bold")
    for col in columns:
        t.add_column(col, overflow="fold")
    for row in rows:
        t.add_row(*["" if v is None else str(v) for v in row])
    Console().print(t)


def _emit(data: Any) -> None:
    click.echo(json.dumps(data, indent=2))


def _units(text: str) -> int:
    """``1.5`` -> 1,500,000 base units; exact decimal arithmetic, never a float."""
    from decimal import Decimal, InvalidOperation

    try:
        value = Decimal(text)
    except InvalidOperation:
        _fail(f"amount {text!r} is not a number (RUFF, up to 6 decimals)")
    units = value * 10**6
    if units != units.to_integral_value() or units <= 0:
        _fail(f"amount {text!r} must be positive with at most 6 decimals")
    return int(units)


def read_key_file(path: Path | None, chain_dir: Path):
    """The key in ``path``, or ``<chain_dir>/keys/owner.key``; a bad file ends the command."""
    from hub.chain.node.files import KEYS_DIR, KeyFileError, read_key

    try:
        return read_key(path or chain_dir / KEYS_DIR / DEFAULT_KEY)
    except KeyFileError as exc:
        _fail(str(exc))


def sign_tx(key, genesis, tx_type: str, payload: dict, nonce: int, fee: int | None = None,
            valid_until: int | None = None):
    """Sign a transaction for the chain of ``genesis``: (the transaction, the minimum fee). The fee
    is the minimum unless given. The one place the CLI (local or ``--rpc``) signs, so a change to
    what a signature covers is made once."""
    from hub.chain.protocol.tx import Transaction

    constants = genesis.rules()
    valid_until = time.time_ns() // 1_000_000 + 3_600_000 if valid_until is None else valid_until
    draft = Transaction.create(key, genesis.network, tx_type, payload, nonce=nonce, fee=0, valid_until=valid_until)
    # The fee field grows by at most 8 bytes once set.
    minimum = constants.fee_for(draft.size + 9) + (constants.CANDIDATE_FEE if tx_type == "register_candidate" else 0)
    fee = minimum if fee is None else fee
    return Transaction.create(key, genesis.network, tx_type, payload, nonce=nonce, fee=fee, valid_until=valid_until), minimum


class _Chain:
    """What a command needs: the genesis, the store, and helpers to read and submit."""

    def __init__(self, chain_dir: Path) -> None:
        from hub.chain.node.files import GENESIS_FILE
        from hub.chain.node.store import DB_NAME, ChainStore
        from hub.chain.protocol.genesis import GenesisError, load_genesis

        self.dir = chain_dir
        if not (chain_dir / GENESIS_FILE).exists():
            _fail(f"no chain in {chain_dir}: run `hub run` once (embedded chain) or `hub chain genesis --out {chain_dir}`")
        try:
            self.genesis = load_genesis(chain_dir / GENESIS_FILE)
        except GenesisError as exc:
            _fail(str(exc))
        if not (chain_dir / DB_NAME).exists():
            from hub.chain.node.node import ChainNode

            ChainNode(chain_dir, self.genesis).close()
        self.store = ChainStore(chain_dir)
        self.constants = self.genesis.rules()

    def account(self, address: bytes) -> tuple[int, int]:
        value = self.store.state_value("acct", address)
        return (value[0], value[1]) if value else (0, 0)

    def candidate_address(self, name: str) -> bytes | None:
        return self.store.state_value("name", name)

    def meta(self, key: str) -> Any:
        return self.store.state_value("meta", key)

    def key(self, path: Path | None):
        return read_key_file(path, self.dir)

    def submit(self, key, tx_type: str, payload, fee: int | None, wait: bool, as_json: bool) -> bytes:
        from hub.chain.protocol.errors import TxRejected
        from hub.crypto.address import address_of

        sender = address_of(key.public_key)
        nonce = max(self.account(sender)[1], self.store.inbox_next_nonce(sender)) + 1
        payload = payload.model_dump()
        tx, minimum = sign_tx(key, self.genesis, tx_type, payload, nonce, fee)
        fee = tx.fee
        balance = self.account(sender)[0]
        spend = fee + (payload.get("amount", 0) if tx_type == "transfer" else 0)
        if spend > balance:
            _fail(f"insufficient balance: this needs {_ruff(spend)} (fee included), the account holds {_ruff(balance)}")
        if fee < minimum:
            _fail(f"fee {fee} is below the minimum {minimum} base units for this transaction")
        try:
            tx.model()
        except TxRejected as exc:
            _fail(str(exc))
        self.store.add_to_inbox(tx.hash, tx.raw, sender, nonce)
        status = "queued"
        if wait:
            deadline = time.monotonic() + 3 * self.constants.BLOCK_INTERVAL / 1000 + 5
            while time.monotonic() < deadline:
                if self.store.tx_location(tx.hash) is not None:
                    status = "included"
                    break
                inbox = self.store.inbox_status(tx.hash) or ""
                if inbox.startswith("rejected"):
                    _fail(f"the node refused transaction {tx.hash.hex()}: {inbox.removeprefix('rejected: ')}")
                if inbox.startswith("dropped"):
                    _fail(f"transaction {tx.hash.hex()} {inbox}")
                time.sleep(0.2)
            else:
                if (self.store.inbox_status(tx.hash) or "") == "pending":
                    _fail(f"transaction {tx.hash.hex()} is pending in the node's mempool but not in a block yet; "
                          "`hub chain tx HASH` shows its status")
                _fail(f"transaction {tx.hash.hex()} is not in a block yet: is the hub running (`hub run`)?")
        if as_json:
            _emit({"hash": tx.hash.hex(), "nonce": nonce, "fee": fee, "status": status,
                   "height": (self.store.tx_location(tx.hash) or (None,))[0]})
        else:
            where = f" in block {self.store.tx_location(tx.hash)[0]}" if status == "included" else \
                " (the running hub includes it in its next block; `hub chain tx HASH` shows its status)"
            click.echo(f"{tx_type} {tx.hash.hex()} {status}{where}; fee {_ruff(fee)}")
        return tx.hash  # the market's commands go on with it (a call's id is its hash)


def _address(text: str) -> bytes:
    from hub.crypto.address import AddressError, decode_address

    try:
        return decode_address(text)
    except AddressError as exc:
        _fail(f"address {text!r}: {exc}")

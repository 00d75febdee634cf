"""``hub chain ... --rpc URL``: the chain commands against a node's HTTP RPC instead of a chain directory.

Signing stays here (the key file never leaves the machine); the signed transaction goes to the
node's ``POST /tx`` and is read back with ``GET /tx/{hash}``. The genesis (chain id, fee constants)
comes from ``GET /genesis``, checked against ``/head``'s ``genesis_hash``. HTTP is the standard
library's urllib, like ``hub chain status``: the CLI needs nothing the hub does not install.
Imported only when a command is given ``--rpc``.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import click

from hub.chain.cli_support import _emit, _fail, _ruff, read_key_file, sign_tx

TIMEOUT = 10.0  # seconds per request


class RpcNode:
    """A node as the CLI sees it through its RPC; every failure ends the command with a message
    naming the URL and what went wrong."""

    def __init__(self, url: str, chain_dir: Path) -> None:
        url = url.strip().rstrip("/")
        self.url = url if "://" in url else f"http://{url}"
        self.dir = chain_dir  # only for the default key file, <chain-dir>/keys/owner.key
        self._genesis = None

    def key(self, path: Path | None):
        return read_key_file(path, self.dir)

    # --- HTTP --------------------------------------------------------------------------------------
    def request(self, path: str, body: Any = None, *, missing_ok: bool = False, method: str | None = None,
                token: str | None = None) -> Any:
        """The JSON answer to GET (or POST ``body``) ``path``; None for a 404 when ``missing_ok``.
        A 4xx ends the command with the node's message, a failure to connect with the URL.
        ``token``: the node's admin token, for the routes that change its peers."""
        data = None if body is None else json.dumps(body).encode()
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        request = urllib.request.Request(self.url + path, data=data,
                                         method=method or ("GET" if body is None else "POST"), headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=TIMEOUT) as reply:
                return json.loads(reply.read())
        except urllib.error.HTTPError as exc:
            try:
                answer = json.loads(exc.read())
            except ValueError:
                answer = {}
            if exc.code == 404 and missing_ok:
                return None
            message = answer.get("message") if isinstance(answer, dict) else None
            code = answer.get("error") if isinstance(answer, dict) else None  # the reason code scripts match on
            detail = f"{code}: {message}" if code and message else message or exc.reason
            _fail(f"the node at {self.url} answered {path} with HTTP {exc.code}: {detail}")
        except (urllib.error.URLError, OSError) as exc:
            _fail(f"cannot reach the node at {self.url} ({getattr(exc, 'reason', exc)})")
        except ValueError:
            _fail(f"the node at {self.url} answered {path} with something that is not JSON")

    # --- what the commands need --------------------------------------------------------------------
    @property
    def genesis(self):
        if self._genesis is None:
            from hub.chain.protocol.genesis import GenesisError, parse_genesis

            try:
                genesis = parse_genesis(self.request("/genesis"), f"{self.url}/genesis")
            except GenesisError as exc:
                _fail(str(exc))
            theirs = self.request("/head").get("genesis_hash")
            if theirs != genesis.hash.hex():
                _fail(f"the node at {self.url} serves a genesis ({genesis.hash.hex()[:16]}) that is not the one "
                      f"its head says it follows ({str(theirs)[:16]})")
            self._genesis = genesis
        return self._genesis

    @property
    def constants(self):
        return self.genesis.rules()

    def account_info(self, address: bytes) -> dict:
        from hub.crypto.address import encode_address

        return self.request(f"/accounts/{urllib.parse.quote(encode_address(address))}")

    def account(self, address: bytes) -> tuple[int, int]:
        info = self.account_info(address)
        return info["balance"], info["nonce"]

    def candidate_address(self, name: str) -> bytes | None:
        from hub.crypto.address import decode_address

        for row in self.request("/candidates")["candidates"]:
            if row["name"] == name:
                return decode_address(row["address"])
        return None

    def submit(self, key, tx_type: str, payload, fee: int | None, wait: bool, as_json: bool) -> bytes:
        """Sign here, submit to the node, and (``wait``) read it back until a block includes it."""
        from hub.chain.protocol.errors import TxRejected
        from hub.crypto.address import address_of

        sender = address_of(key.public_key)
        info = self.account_info(sender)
        nonce = info.get("next_nonce", info["nonce"] + 1)
        tx, minimum = sign_tx(key, self.genesis, tx_type, payload.model_dump(), nonce, fee)
        spend = tx.fee + (tx.payload.get("amount", 0) if tx_type == "transfer" else 0)
        if spend > info["balance"]:
            _fail(f"insufficient balance: this needs {_ruff(spend)} (fee included), the account holds "
                  f"{_ruff(info['balance'])} (at {self.url})")
        if tx.fee < minimum:
            _fail(f"fee {tx.fee} is below the minimum {minimum} base units for this transaction")
        try:
            tx.model()
        except TxRejected as exc:
            _fail(str(exc))
        answer = self.request("/tx", {"tx": tx.raw.hex()})
        status, height = answer.get("status", "pending"), None
        if wait:
            deadline = time.monotonic() + 3 * self.constants.BLOCK_INTERVAL / 1000 + 5
            while status not in ("included", "irreversible"):
                if time.monotonic() > deadline:
                    _fail(f"transaction {tx.hash.hex()} is not in a block of {self.url} yet (status {status}); "
                          f"`hub chain tx {tx.hash.hex()} --rpc {self.url}` shows it later")
                time.sleep(0.2)
                found = self.request(f"/tx/{tx.hash.hex()}", missing_ok=True)
                if found is None:
                    _fail(f"the node at {self.url} dropped transaction {tx.hash.hex()} from its mempool "
                          "without including it (it became invalid, e.g. its nonce was taken)")
                status = found.get("status", "pending")
                if status not in ("pending", "included", "irreversible"):  # refused or dropped, and why
                    _fail(f"the node at {self.url} did not include transaction {tx.hash.hex()}: {status}"
                          + "".join(f": {found[k]}" for k in ("reason", "message") if found.get(k)))
                height = found.get("height")
        if as_json:
            _emit({"hash": tx.hash.hex(), "nonce": nonce, "fee": tx.fee, "status": status, "height": height})
        else:
            where = f" in block {height}" if height is not None else \
                f" (the node includes it in a coming block; `hub chain tx HASH --rpc {self.url}` shows its status)"
            click.echo(f"{tx_type} {tx.hash.hex()} {status}{where}; fee {_ruff(tx.fee)}")
        return tx.hash  # the market's commands go on with it (a call's id is its hash)

    # --- reads -------------------------------------------------------------------------------------
    def block(self, height: int | None):
        """(the canonical block at ``height`` or the head, the head's height)."""
        from hub.chain.protocol.block import Block

        head = self.request("/head")["height"]
        height = head if height is None else height
        if height == 0:
            _fail("height 0 is the genesis; see genesis.json")
        raw = self._raw(f"/blocks/{height}/raw")
        if raw is None:
            _fail(f"no block at height {height}; the head of {self.url} is {head}")
        try:
            blk = Block.decode(raw)
        except Exception as exc:  # noqa: BLE001 - whatever a node sends, the user gets a sentence
            _fail(f"the node at {self.url} sent block {height} in a form that does not decode: {exc}")
        if blk.header.height != height:
            _fail(f"the node at {self.url} answered height {height} with block {blk.header.height}")
        return blk

    def _raw(self, path: str) -> bytes | None:
        try:
            with urllib.request.urlopen(self.url + path, timeout=TIMEOUT) as reply:
                return reply.read()
        except urllib.error.HTTPError as exc:
            if exc.code == 404:
                return None
            _fail(f"the node at {self.url} answered {path} with HTTP {exc.code}")
        except (urllib.error.URLError, OSError) as exc:
            _fail(f"cannot reach the node at {self.url} ({getattr(exc, 'reason', exc)})")

    def transaction(self, tx_hash: str) -> dict:
        """``hub chain tx``'s answer: the node's, with the inclusion proof checked here against the
        header the node serves for that height."""
        from hub.crypto import merkle

        found = self.request(f"/tx/{tx_hash}", missing_ok=True)
        if found is None:
            _fail(f"no transaction {tx_hash} in the chain or the mempool of {self.url}")
        if "height" not in found:
            return {k: found[k] for k in ("hash", "status", "reason", "message") if k in found}
        header = self.request(f"/blocks/{found['height']}")
        proof = found["proof"]
        ok = header.get("tx_root") == proof["tx_root"] and merkle.verify_inclusion(
            bytes.fromhex(found["raw"]), found["index"], proof["tree_size"], [bytes.fromhex(p) for p in proof["path"]],
            bytes.fromhex(proof["tx_root"]))
        return {"hash": found["hash"], "status": found["status"], "height": found["height"], "index": found["index"],
                "block": found["block"], "type": found["type"], "sender": found["sender"], "nonce": found["nonce"],
                "fee": found["fee"], "payload": found["payload"],
                "proof": {"tx_root": proof["tx_root"], "tree_size": proof["tree_size"], "path": proof["path"],
                          "verified": ok}}

    def producers(self) -> dict:
        sched = self.request("/schedule")
        keys = ("position", "address", "name", "produced", "missed", "banned_until", "disqualified", "next_round")
        return {"round": sched["round"], "head": sched["head"], "lib": sched["lib"],
                "producers": [{k: row.get(k) for k in keys} for row in sched["producers"]]}


__all__ = ["RpcNode"]

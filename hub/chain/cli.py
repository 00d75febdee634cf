"""``hub chain ...``: keys, genesis, accounts, transactions, blocks, producers, device bindings.

How the CLI reaches the chain: with ``--rpc URL`` it talks to that node's HTTP RPC
(``hub/chain/cli_rpc.py``: transactions are signed here and submitted with ``POST /tx``). Without
it, it works on the chain directory, ``<data>/chain`` by default (``--chain-dir`` for another),
the one the hub's embedded chain uses. Reads go straight to ``chain.db`` (SQLite in WAL mode, safe beside a running hub).
Transactions are signed here and queued in the store's inbox; the running node takes them into its
mempool within a second and produces them into its next block. ``--wait`` waits for that. With the
hub stopped, they wait in the inbox until it starts.

This module is imported by every ``hub`` invocation, so everything heavy is imported inside the
commands.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import click

from hub.chain.cli_support import DEFAULT_KEY, _address, _Chain, _emit, _fail, _ruff, _table, _units
from hub.chain.format import header_json as _header_json


def _chain_dir(explicit: Path | None) -> Path:
    if explicit is not None:
        return explicit
    ctx = click.get_current_context()
    data = ctx.meta.get("chain_data") or getattr(ctx.find_root().obj, "data", None) or "hub-data"
    return Path(data) / "chain"


def _remember_data(ctx: click.Context, _param: click.Parameter, value: Path | None) -> None:
    if value is not None:
        ctx.meta["chain_data"] = value


def chain_dir_option(fn):
    """``--chain-dir DIR``, and ``--data DIR`` (the hub's data directory) after the command too."""
    fn = click.option("--data", type=click.Path(file_okay=False, path_type=Path), expose_value=False,
                      callback=_remember_data, help="Hub data directory (default ./hub-data).")(fn)
    return click.option("--chain-dir", type=click.Path(file_okay=False, path_type=Path),
                        help="Chain directory (default <data>/chain, the embedded chain's).")(fn)


json_option = click.option("--json", "as_json", is_flag=True, help="Machine-readable JSON output.")
key_option = click.option("--key", "key_path", type=click.Path(dir_okay=False, path_type=Path),
                          help=f"Key file of the sender (default <chain-dir>/keys/{DEFAULT_KEY}).")
fee_option = click.option("--fee", type=click.IntRange(0), help="Fee in base units (default: the minimum).")
wait_option = click.option("--wait", is_flag=True, help="Wait until a block includes it.")
rpc_option = click.option("--rpc", "rpc_url", metavar="URL",
                          help="A node's RPC (e.g. http://127.0.0.1:9800) instead of the chain directory; "
                               "transactions are signed here with the key file and submitted to it.")


def _source(chain_dir: Path | None, rpc_url: str | None):
    """The chain directory (``_Chain``) or, with ``--rpc``, the node (``RpcNode``): the same methods."""
    if rpc_url is None:
        return _Chain(_chain_dir(chain_dir))
    from hub.chain.cli_rpc import RpcNode

    return RpcNode(rpc_url, _chain_dir(chain_dir))


@click.group()
def chain() -> None:
    """The Ruff chain: keys, genesis, accounts, transactions, blocks, producers."""


@chain.command()
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), help="Key file to write.")
@click.option("--name", default="wallet", show_default=True, help="Write <chain-dir>/keys/NAME.key.")
@chain_dir_option
@json_option
def keygen(out: Path | None, name: str, chain_dir: Path | None, as_json: bool) -> None:
    """Make an Ed25519 key pair; the file (mode 0600) is the account: back it up."""
    from hub.chain.node.files import KEYS_DIR, write_key
    from hub.crypto.address import address_of, encode_address
    from hub.crypto.keys import PrivateKey

    path = out or _chain_dir(chain_dir) / KEYS_DIR / f"{name}.key"
    key = PrivateKey.generate()
    try:
        write_key(path, key)
    except FileExistsError:
        _fail(f"{path} exists; a key file is never overwritten")
    address = encode_address(address_of(key.public_key))
    if as_json:
        _emit({"file": str(path), "address": address, "public_key": key.public_key.hex()})
    else:
        click.echo(f"{address}\npublic key {key.public_key.hex()}\nwritten to {path}")


@chain.command()
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), help="Directory (default <data>/chain).")
@click.option("--chain-id", default="ruff-devnet", show_default=True)
@click.option("--producers", type=click.IntRange(1, 1000), default=4, show_default=True, help="Producer keys to make.")
@click.option("--balance", "balances", multiple=True, metavar="ADDRESS=RUFF", help="An initial balance (repeatable).")
@click.option("--fund", default="1000000", show_default=True, help="RUFF given to each producer key.")
@click.option("--set", "overrides", multiple=True, metavar="NAME=INT", help="Override a constant, e.g. BLOCK_INTERVAL=500.")
@click.option("--time", "genesis_time", type=click.IntRange(0), help="Genesis time, unix ms (default now).")
@click.option("--data", type=click.Path(file_okay=False, path_type=Path), expose_value=False,
              callback=_remember_data, help="Hub data directory (default ./hub-data).")
def genesis(out: Path | None, chain_id: str, producers: int, balances: tuple[str, ...], fund: str,
            overrides: tuple[str, ...], genesis_time: int | None) -> None:
    """Write genesis.json and producer keys for a devnet."""
    from hub.chain.node.files import GENESIS_FILE, KEYS_DIR, write_key
    from hub.chain.protocol.genesis import GenesisError, parse_genesis
    from hub.crypto.address import address_of, encode_address
    from hub.crypto.keys import PrivateKey

    out = out or _chain_dir(None)
    if (out / GENESIS_FILE).exists():
        _fail(f"{out / GENESIS_FILE} exists; choose another --out")
    constants: dict[str, int] = {}
    for item in overrides:
        name, sep, value = item.partition("=")
        if not sep or not value.strip().lstrip("-").isdigit():
            _fail(f"--set {item!r}: write NAME=INTEGER (times in ms, amounts in base units)")
        constants[name.strip()] = int(value)
    keys = [PrivateKey.generate() for _ in range(producers)]
    amounts = {encode_address(address_of(k.public_key)): _units(fund) for k in keys}
    for item in balances:
        address, sep, amount = item.partition("=")
        if not sep:
            _fail(f"--balance {item!r}: write ADDRESS=RUFF")
        _address(address)
        amounts[address.strip()] = amounts.get(address.strip(), 0) + _units(amount)
    data = {"chain_id": chain_id, "genesis_time": genesis_time if genesis_time is not None else time.time_ns() // 10**9 * 1000,
            "producers": [k.public_key.hex() for k in keys], "balances": amounts, "constants": constants}
    try:
        g = parse_genesis(data, "genesis")
    except GenesisError as exc:
        _fail(str(exc))
    out.mkdir(parents=True, exist_ok=True)
    for i, k in enumerate(keys):
        write_key(out / KEYS_DIR / f"producer-{i}.key", k)
    (out / GENESIS_FILE).write_text(g.to_json())
    click.echo(f"{out / GENESIS_FILE}: chain {chain_id}, genesis {g.hash.hex()[:16]}, {producers} producer key(s) in {out / KEYS_DIR}")


@chain.command()
@click.argument("address", required=False)
@key_option
@chain_dir_option
@rpc_option
@json_option
def balance(address: str | None, key_path: Path | None, chain_dir: Path | None, rpc_url: str | None, as_json: bool) -> None:
    """Balance and nonce of ADDRESS (default: the owner key's account)."""
    from hub.crypto.address import address_of, encode_address

    c = _source(chain_dir, rpc_url)
    raw = _address(address) if address else address_of(c.key(key_path).public_key)
    bal, nonce = c.account(raw)
    if as_json:
        _emit({"address": encode_address(raw), "balance": bal, "nonce": nonce})
    else:
        click.echo(f"{encode_address(raw)}: {_ruff(bal)} (nonce {nonce})")


@chain.command()
@click.argument("to")
@click.argument("amount")
@click.option("--memo", default="", help="Up to 64 bytes of text.")
@key_option
@fee_option
@wait_option
@chain_dir_option
@rpc_option
@json_option
def send(to: str, amount: str, memo: str, key_path, fee, wait, chain_dir, rpc_url, as_json) -> None:
    """Send AMOUNT RUFF (decimals allowed: 1.5) to the address TO."""
    from hub.chain.protocol.payloads import Transfer

    c = _source(chain_dir, rpc_url)
    if len(memo.encode()) > 64:
        _fail("--memo is longer than 64 bytes")
    payload = Transfer(to=_address(to), amount=_units(amount), memo=memo.encode())
    c.submit(c.key(key_path), "transfer", payload, fee, wait, as_json)


@chain.group()
def candidate() -> None:
    """Stand for election as a block producer."""


@candidate.command("register")
@click.argument("name")
@key_option
@fee_option
@wait_option
@chain_dir_option
@rpc_option
@json_option
def candidate_register(name: str, key_path, fee, wait, chain_dir, rpc_url, as_json) -> None:
    """Register the key's account as candidate NAME (a-z, 0-9, _ and -; the fee includes CANDIDATE_FEE)."""
    from pydantic import ValidationError

    from hub.chain.protocol.payloads import RegisterCandidate

    c = _source(chain_dir, rpc_url)
    try:
        payload = RegisterCandidate(name=name)
    except ValidationError:
        _fail(f"candidate name {name!r}: 1-32 of a-z, 0-9, _ and -")
    c.submit(c.key(key_path), "register_candidate", payload, fee, wait, as_json)


@chain.command()
@click.argument("candidates", nargs=-1)
@key_option
@fee_option
@wait_option
@chain_dir_option
@rpc_option
@json_option
def vote(candidates: tuple[str, ...], key_path, fee, wait, chain_dir, rpc_url, as_json) -> None:
    """Vote for CANDIDATES (names or addresses); replaces your previous vote; none withdraws it."""
    from hub.chain.protocol.payloads import Vote

    c = _source(chain_dir, rpc_url)
    chosen = []
    for item in candidates:
        if item.startswith("ruff1"):
            chosen.append(_address(item))
        else:
            found = c.candidate_address(item)
            if found is None:
                _fail(f"no candidate named {item!r}")
            chosen.append(found)
    if len(chosen) > c.constants.MAX_VOTES:
        _fail(f"at most {c.constants.MAX_VOTES} candidates per vote")
    c.submit(c.key(key_path), "vote", Vote(candidates=chosen), fee, wait, as_json)


@chain.command()
@click.argument("height", type=click.IntRange(1), required=False)
@chain_dir_option
@rpc_option
@json_option
def block(height: int | None, chain_dir: Path | None, rpc_url: str | None, as_json: bool) -> None:
    """The canonical block at HEIGHT (default: the head) and its transactions."""
    from hub.chain.protocol.tx import Transaction

    if rpc_url is not None:
        blk = _source(chain_dir, rpc_url).block(height)
    else:
        c = _Chain(_chain_dir(chain_dir))
        head = c.store.head()
        height = head.height if height is None else height
        if height == 0:
            _fail("height 0 is the genesis; see genesis.json")
        blk = c.store.canonical_block(height)
        if blk is None:
            _fail(f"no block at height {height}; the head is {head.height}")
    txs = [Transaction.from_bytes(raw) for raw in blk.txs]
    data = {**_header_json(blk), "txs": [{"hash": t.hash.hex(), "type": t.type, "fee": t.fee} for t in txs]}
    if as_json:
        _emit(data)
        return
    for k, v in data.items():
        if k != "txs":
            click.echo(f"{k:>12}: {v}")
    if txs:
        _table("Transactions", ["#", "hash", "type", "fee"], [[i, t.hash.hex(), t.type, _ruff(t.fee)] for i, t in enumerate(txs)])


@chain.command()
@click.argument("tx_hash")
@chain_dir_option
@rpc_option
@json_option
def tx(tx_hash: str, chain_dir: Path | None, rpc_url: str | None, as_json: bool) -> None:
    """A transaction, with its Merkle inclusion proof checked against its block's header."""
    try:
        raw_hash = bytes.fromhex(tx_hash)
        assert len(raw_hash) == 32
    except (ValueError, AssertionError):
        _fail("a transaction hash is 64 hex digits")
    if rpc_url is not None:
        data = _source(chain_dir, rpc_url).transaction(tx_hash)
        if "height" not in data:  # not in a block: pending, or whatever the node says became of it
            status = data["status"] + "".join(f": {data[k]}" for k in ("reason", "message") if data.get(k))
            _emit(data) if as_json else click.echo(f"{tx_hash}: {status}")
            sys.exit(0 if data["status"] == "pending" else 1)
    else:
        data = _tx_local(_Chain(_chain_dir(chain_dir)), tx_hash, raw_hash, as_json)
    if as_json:
        _emit(data)
        return
    proof = data["proof"]
    for k in ("hash", "status", "height", "index", "block", "type", "sender", "nonce", "fee"):
        click.echo(f"{k:>8}: {data[k]}")
    click.echo(f"{'payload':>8}: {json.dumps(data['payload'])}")
    click.echo(f"   proof: {len(proof['path'])} hashes to tx_root {proof['tx_root'][:16]}..., "
               f"{'verified' if proof['verified'] else 'DOES NOT VERIFY'}")
    for p in proof["path"]:
        click.echo(f"          {p}")


def _tx_local(c, tx_hash: str, raw_hash: bytes, as_json: bool) -> dict:
    from hub.chain.node.rpc.views import jsonable
    from hub.chain.protocol.tx import Transaction
    from hub.crypto import merkle
    from hub.crypto.address import encode_address

    where = c.store.tx_location(raw_hash)
    if where is None:
        status = c.store.inbox_status(raw_hash)
        if status is None:
            _fail(f"no transaction {tx_hash} in the chain or the queue")
        _emit({"hash": tx_hash, "status": status}) if as_json else click.echo(f"{tx_hash}: {status}")
        sys.exit(1 if status.startswith(("rejected", "dropped")) else 0)
    height, index = where
    blk = c.store.canonical_block(height)
    t = Transaction.from_bytes(blk.txs[index])
    proof = merkle.inclusion_proof(list(blk.txs), index)
    ok = merkle.verify_inclusion(t.raw, index, len(blk.txs), proof, blk.header.tx_root)
    data = {"hash": tx_hash, "status": "included", "height": height, "index": index, "block": blk.hash.hex(),
            "type": t.type, "sender": encode_address(t.sender_address), "nonce": t.nonce, "fee": t.fee,
            "payload": jsonable(t.payload),  # device payloads nest their bytes in signed statements
            "proof": {"tx_root": blk.header.tx_root.hex(), "tree_size": len(blk.txs), "path": [p.hex() for p in proof],
                      "verified": ok}}
    return data


@chain.command()
@click.argument("public_key")
@chain_dir_option
@rpc_option
@json_option
def device(public_key: str, chain_dir: Path | None, rpc_url: str | None, as_json: bool) -> None:
    """A device's binding on chain: its controller, binding counter (seq), time and revocation epoch."""
    from hub.chain.node.rpc.device_routes import NotFound, binding, parse_public_key

    try:
        raw = parse_public_key(public_key)
    except ValueError as exc:
        _fail(str(exc))
    if rpc_url is not None:
        data = _source(chain_dir, rpc_url).request(f"/devices/{raw.hex()}", missing_ok=True)
        if data is None:
            _fail(f"device {raw.hex()} was never bound on the chain at {rpc_url}")
    else:
        c = _Chain(_chain_dir(chain_dir))
        try:
            data = binding(raw, c.store.state_value("dev", raw), c.store.head().height)
        except NotFound as exc:
            _fail(exc.message)
    if as_json:
        _emit(data)
        return
    who = f"{data['controller']} ({data['controller_address']})" if data["bound"] else "none (factory reset)"
    click.echo(f"    device: {data['device']}\ncontroller: {who}\n       seq: {data['seq']}\n"
               f"      time: {data['time']}\n     epoch: {data['epoch']}\n    height: {data['height']}")


@chain.command()
@click.argument("contract_id")
@chain_dir_option
@rpc_option
@json_option
def contract(contract_id: str, chain_dir: Path | None, rpc_url: str | None, as_json: bool) -> None:
    """A market contract on chain: device, controller, commands, terms, whether it is live, reviews."""
    from hub.chain.node.rpc.market_routes import contract_view, parse_id, reviews_view

    try:
        raw = parse_id(contract_id, "contract")
    except ValueError as exc:
        _fail(str(exc))
    if rpc_url is not None:
        data = _source(chain_dir, rpc_url).request(f"/contracts/{raw.hex()}", missing_ok=True)
        if data is None:
            _fail(f"no contract {raw.hex()} on the chain at {rpc_url}")
    else:
        c = _Chain(_chain_dir(chain_dir))
        record = c.store.state_value("contract", raw)
        if record is None:
            _fail(f"no contract {raw.hex()} on chain")
        binding = c.store.state_value("dev", record[0])
        data = {**contract_view(raw, record, binding is not None and binding[0] == record[1],
                                c.store.state_value("rev", raw)),
                "device_reviews": reviews_view(record[0], c.store.state_value("rev", record[0]))}
    if as_json:
        _emit(data)
        return
    terms = ", ".join(f"{k}={v}" for k, v in data["terms"].items() if v not in (0, ""))
    reviews = data["reviews"]
    click.echo(f"  contract: {data['id']}\n    device: {data['device']}\ncontroller: {data['controller']} "
               f"({data['controller_address']})\n  commands: {', '.join(data['commands'])}\n     terms: {terms}\n"
               f"  endpoint: {data['endpoint'] or '-'}\n      live: {'yes' if data['live'] else 'no (the device changed hands)'}\n"
               f"   reviews: {reviews['negative']} negative of {reviews['returned']} returned calls\n"
               f"    height: {data['height']}")


@chain.command()
@chain_dir_option
@rpc_option
@json_option
def producers(chain_dir: Path | None, rpc_url: str | None, as_json: bool) -> None:
    """This round's producers in slot order, with blocks produced, slots missed and bans."""
    info = _source(chain_dir, rpc_url).producers() if rpc_url is not None else _producers_local(_Chain(_chain_dir(chain_dir)))
    if as_json:
        _emit(info)
        return
    _table(f"Round {info['round']} (head {info['head']}, irreversible {info['lib']})",
           ["#", "address", "name", "produced", "missed", "banned until", "disqualified", "next round"],
           [[r["position"], r["address"], r["name"], r["produced"], r["missed"],
             time.strftime("%Y-%m-%d %H:%M", time.localtime(r["banned_until"] / 1000)) if r["banned_until"] else "",
             "yes" if r["disqualified"] else "", "yes" if r["next_round"] else "no"] for r in info["producers"]])


def _producers_local(c) -> dict:
    from hub.chain.protocol import dpos
    from hub.crypto.address import address_of, encode_address

    head = c.store.head()
    cst = c.constants
    order = [bytes(pk) for pk in c.meta("order")]
    elected = {bytes(pk) for pk in c.meta("elected")}
    if head.height % cst.PRODUCERS == 0:  # a new round starts with the next block
        order = list(dpos.producer_order(sorted(elected), head.hash))
    now = time.time_ns() // 1_000_000
    rows = []
    for i, pk in enumerate(order):
        a = address_of(pk)
        cand = c.store.state_value("cand", a)
        ban = c.store.state_value("ban", a) or 0
        rows.append({"position": i, "address": encode_address(a), "name": cand[0] if cand else None,
                     "produced": c.store.state_value("prod", a) or 0, "missed": c.store.state_value("miss", a) or 0,
                     "banned_until": ban if ban > now else None, "disqualified": c.store.state_value("dq", a) is not None,
                     "next_round": pk in elected})
    return {"round": dpos.round_of(head.height + 1, cst), "head": head.height, "lib": c.store.get_meta("lib"),
            "producers": rows}


from hub.chain.node_cli import node as _node_command  # noqa: E402 - defined apart, registered here

chain.add_command(_node_command)

from hub.chain.devnet_cli import devnet as _devnet_command, status as _status_command  # noqa: E402 - as above

chain.add_command(_devnet_command)
chain.add_command(_status_command)

from hub.chain.peers_cli import peers as _peers_command  # noqa: E402 - as above

chain.add_command(_peers_command)

from hub.chain.control_cli import control as _control_command  # noqa: E402 - as above

chain.add_command(_control_command)

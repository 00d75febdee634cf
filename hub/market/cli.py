"""``hub market ...``: the owner's and the renter's command line (docs/market.md, "Command line").

The owner's commands (``offer``, ``contracts``, ``earnings``) talk to the running hub with its API
token: the hub signs with its controller key. The renter's (``offers``, ``rent``, ``review``,
``refund``, ``channel``) need only a key file: transactions are signed here and go to the chain
directory of this machine's hub (the embedded default) or, with ``--rpc``, to any full node; the
rental itself talks to the owner's hub with no token. Amounts are typed and shown in RUFF (up to
six decimals, read exactly) and every transaction's fee is shown before the key signs it; ``--yes``
skips the question (for scripts). Heavy imports stay inside the commands: every ``hub``
invocation imports this module.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import click

from hub.cliutil import Ctx, call_api, connection_options, emit_json, fail, json_option, pass_ctx, table


@click.group()
def market() -> None:
    """Rent devices out and rent them: contracts, calls, cheques, earnings, reviews."""


def _input(fn, *args, **kw):
    from hub.market.units import InputError

    try:
        return fn(*args, **kw)
    except InputError as exc:
        fail(str(exc))


def _when(ms: Any) -> str:
    if not ms:
        return ""
    ms = ms if ms > 1e11 else ms * 1000
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ms / 1000))


# --- the owner -----------------------------------------------------------------------------------


@market.command()
@click.argument("device_id")
@click.option("--commands", required=True, help="What a renter may run, comma-separated: outlet.turn_on,outlet.turn_off.")
@click.option("--price", help="Prepaid: RUFF per --window (like Slock.it's lock).")
@click.option("--window", help="Prepaid: the window a --price buys (10m, 1h).")
@click.option("--rate", help="Metered: RUFF per --per.")
@click.option("--per", help="Metered: a duration (10m: billed by time) or the meter's unit (kWh: billed by --meter).")
@click.option("--meter", help="Metered per unit: the device's meter entity (default energy).")
@click.option("--deposit", help="Metered: the smallest channel balance a renter must hold, in RUFF.")
@click.option("--max", "max_duration", help="Longest rental (2h; prepaid default: one window, metered: 1h).")
@click.option("--endpoint", default="", help="This hub's URL as renters reach it (http://192.168.1.20:8123).")
@click.option("--yes", is_flag=True, help="Do not ask before signing.")
@click.option("--wait", is_flag=True, help="Wait until the contract is in a final block (renters see it then).")
@json_option
@connection_options
@pass_ctx
def offer(ctx: Ctx, device_id: str, commands: str, price, window, rate, per, meter, deposit, max_duration,
          endpoint: str, yes: bool, wait: bool, as_json: bool) -> None:
    """Offer DEVICE_ID for rent: a create_contract signed by this hub's controller key, e.g.
    `hub market offer demo:smart_plug --commands outlet.turn_on,outlet.turn_off --price 1 --window 10m --max 2h`
    or `... --rate 0.5 --per kWh --deposit 5`."""
    from hub.market.units import describe_terms, metered_terms, prepaid_terms, ruff

    names = [c.strip() for c in commands.split(",") if c.strip()]
    if not names:
        fail("--commands: name at least one command, as entity.command (outlet.turn_on)")
    if price is not None or window is not None:
        if rate is not None or per is not None or deposit is not None or meter is not None:
            fail("a contract is prepaid (--price, --window) or metered (--rate, --per, --deposit), not both")
        if price is None or window is None:
            fail("a prepaid contract needs --price and --window")
        terms = _input(prepaid_terms, price, window, max_duration)
    elif rate is not None or per is not None:
        if rate is None or per is None or deposit is None:
            fail("a metered contract needs --rate, --per and --deposit")
        terms = _input(metered_terms, rate, per, meter, deposit, max_duration)
    else:
        fail("give the terms: --price and --window (prepaid) or --rate, --per and --deposit (metered)")
    body = {"device": device_id, "commands": names, "terms": terms, "endpoint": endpoint}
    preview = call_api(ctx, lambda c: c.post("/api/market/offers", {**body, "preview": True}))
    # What is said to the person goes to stderr; stdout is the contract id alone (CONTRACT=$(hub market offer ...)).
    click.echo(f"Offer {device_id}: {', '.join(names)}\n  {describe_terms(terms)}\n"
               f"  fee of the create_contract transaction: {ruff(preview['fee'])}", err=True)
    if not yes and not click.confirm("Sign and publish it?", default=True, err=True):
        fail("nothing was signed")
    answer = call_api(ctx, lambda c: c.post("/api/market/offers", body))
    contract = answer["contract"]
    if wait:
        deadline = time.monotonic() + 180  # finality on a remote chain of many producers takes a while
        while not any(r.get("id") == contract and r.get("status") == "live"
                      for r in call_api(ctx, lambda c: c.get("/api/market/contracts"))):
            if time.monotonic() > deadline:
                fail(f"contract {contract} is not in a final block after 180 s; `hub market contracts` shows it later")
            time.sleep(0.2)
    if as_json:
        emit_json(answer)
        return
    click.echo(f"contract {contract} " + ("is live: renters see it in `hub market offers`" if wait else
               "submitted; renters see it in `hub market offers` once it is in a final block"), err=True)
    click.echo(contract)


@market.command()
@json_option
@connection_options
@pass_ctx
def contracts(ctx: Ctx, as_json: bool) -> None:
    """This hub's contracts: device, commands, terms, calls, what they earned."""
    from hub.market.chainview import terms_dict
    from hub.market.units import describe_terms, ruff

    rows = call_api(ctx, lambda c: c.get("/api/market/contracts"))
    if as_json:
        emit_json(rows)
        return
    table("Contracts", ["contract", "device", "commands", "terms", "live", "calls", "earned"],
          [[r.get("id") or r.get("contract"), r.get("device_id") or r.get("device"), ", ".join(r.get("commands", [])),
            describe_terms(terms_dict(r.get("terms", {}))), "yes" if r.get("live", True) else "no",
            r.get("calls", ""), ruff(r.get("earned", 0))] for r in rows])


@market.command()
@click.option("--device", help="Only this device's earnings.")
@click.option("--since", help="From: 15m, 2h, 30d, ISO 8601 or unix seconds (default: everything).")
@click.option("--csv", "as_csv", is_flag=True, help="CSV (UTC times, RUFF with 6 decimals): what a bank takes.")
@json_option
@connection_options
@pass_ctx
def earnings(ctx: Ctx, device: str | None, since: str | None, as_csv: bool, as_json: bool) -> None:
    """What each device earned, payment by payment, with totals per device and per day."""
    from hub.cli import parse_since
    from hub.client import ClientError
    from hub.market.units import ruff

    query = {"device": device, "since": parse_since(since) if since else None}
    if as_csv:
        import urllib.parse
        import urllib.request

        client = ctx.client()
        url = client.url + "/api/market/earnings?" + urllib.parse.urlencode(
            {k: v for k, v in {**query, "format": "csv"}.items() if v is not None})
        req = urllib.request.Request(url, headers={"Authorization": f"Bearer {client.token}"})
        try:
            with urllib.request.urlopen(req, timeout=client.timeout) as reply:
                sys.stdout.write(reply.read().decode())
        except urllib.error.HTTPError as exc:
            fail(f"{json.loads(exc.read() or b'{}').get('message', exc.reason)} (HTTP {exc.code})")
        except OSError as exc:
            fail(f"cannot reach the hub at {client.url}: {exc}")
        return
    try:
        rows = ctx.client().get("/api/market/earnings", **query)
    except ClientError as exc:
        fail(str(exc))
    if as_json:
        emit_json(rows)
        return
    table("Earnings", ["time", "device", "contract", "call", "amount"],
          [[_when(r["time"]), r["device"], r["contract"][:16] + "…", r["call"][:16] + "…", ruff(r["amount"])]
           for r in rows])
    per_device: dict[str, int] = {}
    per_day: dict[tuple[str, str], int] = {}
    for r in rows:
        per_device[r["device"]] = per_device.get(r["device"], 0) + r["amount"]
        day = _when(r["time"])[:10]
        per_day[(day, r["device"])] = per_day.get((day, r["device"]), 0) + r["amount"]
    if per_day:
        table("Per day", ["day", "device", "earned"], [[d, dev, ruff(a)] for (d, dev), a in sorted(per_day.items())])
    table("Total", ["device", "earned"], [[d, ruff(a)] for d, a in sorted(per_device.items())]
          + [["all devices", ruff(sum(per_device.values()))]])


# --- the renter ----------------------------------------------------------------------------------


def _chain_dir(ctx: Ctx) -> Path:
    return Path(ctx.data) / "chain"


rpc_option = click.option("--rpc", "rpc_url", metavar="URL",
                          help="A full node's RPC (http://127.0.0.1:9800) instead of this machine's embedded chain.")
key_option = click.option("--key", "key_path", required=True, type=click.Path(dir_okay=False, exists=True, path_type=Path),
                          help="Your key file (as `hub chain keygen` writes it): it signs and pays.")
yes_option = click.option("--yes", is_flag=True, help="Do not ask before signing.")


def _hash_arg(text: str, what: str) -> bytes:
    try:
        raw = bytes.fromhex(text)
    except ValueError:
        raw = b""
    if len(raw) != 32:
        fail(f"{what}: 64 hex digits expected (`hub market offers` and `hub market channel` show them)")
    return raw


def _fee(source: Any, tx_type: str, payload: dict[str, Any]) -> int:
    """The minimum fee of this transaction, from a draft signed by a throwaway key (the signature's
    size does not depend on the key): shown before the user's key signs anything."""
    from hub.chain.cli_support import sign_tx
    from hub.crypto.keys import PrivateKey

    return sign_tx(PrivateKey.generate(), source.genesis, tx_type, payload, 1)[1]


def _payload(tx_type: str, payload: dict[str, Any]):
    from hub.chain.protocol.payloads import parse

    try:
        return parse(tx_type, payload)
    except ValueError as exc:
        fail(f"{tx_type}: {exc}")


def _confirm_and_submit(source: Any, key: Any, tx_type: str, payload: dict[str, Any], lines: list[str], yes: bool,
                        wait: bool = True) -> bytes:
    from hub.market.units import ruff

    model = _payload(tx_type, payload)
    fee = _fee(source, tx_type, model.model_dump())
    for line in lines:
        click.echo(line)
    click.echo(f"  fee of the {tx_type} transaction: {ruff(fee)}")
    if not yes and not click.confirm("Sign and send it?", default=True, err=True):
        fail("nothing was signed")
    return source.submit(key, tx_type, model, None, wait, False)


@market.command()
@click.option("--device", "device_key", help="Only this device's offers (its public key, 64 hex digits).")
@click.option("--all", "show_all", is_flag=True, help="Also offers that are no longer live (the device was sold).")
@rpc_option
@json_option
@connection_options
@pass_ctx
def offers(ctx: Ctx, device_key: str | None, show_all: bool, rpc_url: str | None, as_json: bool) -> None:
    """Offers on chain: device, commands, terms in RUFF, controller, review score (and a warning)."""
    from hub.market.chainview import open_market
    from hub.market.units import describe_terms, review_score

    view = open_market(_chain_dir(ctx), rpc_url)
    rows = view.contracts(device=device_key, live=not show_all)
    devices: dict[str, dict[str, Any]] = {}
    for r in rows:  # a device's own score counts every contract it was rented under
        if r["device"] not in devices:
            devices[r["device"]] = view.reviews(bytes.fromhex(r["device"]))
        r["device_reviews"] = devices[r["device"]]
    if as_json:
        emit_json(rows)
        return
    out, warnings = [], []
    for r in rows:
        score, warn = review_score(r["reviews"]["returned"], r["reviews"]["negative"])
        dev_score, dev_warn = review_score(r["device_reviews"]["returned"], r["device_reviews"]["negative"])
        out.append([r["id"], r["device"][:16] + "…", ", ".join(r.get("commands", [])), describe_terms(r["terms"]),
                    r["controller"][:16] + "…", score + ("  ⚠" if warn else ""), r.get("endpoint") or "-"])
        if warn or dev_warn:
            warnings.append(f"warning: contract {r['id'][:16]}…: many negative reviews (contract: {score}; "
                            f"device: {dev_score})")
    table("Offers", ["contract", "device", "commands", "terms", "controller", "reviews", "hub"], out)
    for w in warnings:
        click.secho(w, fg="yellow", err=True)


@market.command()
@click.argument("contract")
@click.option("--deposit", required=True, help="RUFF to put in escrow (prepaid) or into your channel to the owner (metered; 0 when it holds enough).")
@click.option("--for", "duration", help="End the rental after this long (10m, 1h); default: Ctrl-C, or the paid window.")
@click.option("--every", default=2.0, show_default=True, type=click.FloatRange(0.2, 600), help="Seconds between cheques (metered).")
@key_option
@rpc_option
@yes_option
@connection_options
@pass_ctx
def rent(ctx: Ctx, contract: str, deposit: str, duration: str | None, every: float, key_path: Path,
         rpc_url: str | None, yes: bool) -> None:
    """Rent CONTRACT: show the fees and the deposit, then sign and send the call, wait for access,
    and (metered) pay the hub's receipts with cheques until Ctrl-C or --for ends it. Control the
    device meanwhile with `hub device call DEVICE ENTITY COMMAND --key FILE`."""
    from hub.chain.node.files import KeyFileError, read_key
    from hub.client import HubClient
    from hub.crypto.address import address_of
    from hub.market.chainview import open_market
    from hub.market.renter import RentError, Rental
    from hub.market.units import describe_terms, duration as fmt_duration, parse_duration, parse_ruff, prepaid_windows, ruff

    contract_id = _hash_arg(contract, "CONTRACT")
    amount = _input(parse_ruff, deposit, "--deposit", allow_zero=True)
    for_ms = _input(parse_duration, duration, "--for") if duration else None
    try:
        key = read_key(key_path)
    except KeyFileError as exc:
        fail(str(exc))
    view = open_market(_chain_dir(ctx), rpc_url)
    found = view.contract(contract_id)
    if found is None:
        fail(f"no contract {contract} on this chain (`hub market offers` lists them)")
    if not found.get("live", True):
        fail(f"contract {contract[:16]}… is no longer live: its device changed hands")
    terms = found["terms"]
    lines = [f"Rent {contract[:16]}…: device {found['device'][:16]}…, {', '.join(found.get('commands', []))}",
             f"  {describe_terms(terms)}"]
    if terms["kind"] == "prepaid":
        if amount < terms["price"]:
            fail(f"--deposit: {ruff(amount)} does not pay one window ({ruff(terms['price'])})")
        windows = prepaid_windows(terms, amount)
        lines.append(f"  deposit {ruff(amount)} in escrow: pays {windows} × {fmt_duration(terms['window'])} "
                     f"(at most {ruff(terms['price'] * windows)}; the rest comes back with the owner's return)")
    else:
        lines.append(f"  deposit {ruff(amount)} into your channel to the owner (at least {ruff(terms.get('deposit', 0))} "
                     "must be in it); you pay by cheques as you use it, the rest stays yours")
    balance = view.source.account(address_of(key.public_key))[0]
    if amount > balance:
        fail(f"--deposit: {ruff(amount)} is more than the account holds ({ruff(balance)})")
    call = _confirm_and_submit(view.source, key, "call", {"contract": contract_id, "deposit": amount}, lines, yes)
    click.echo(f"call {call.hex()}")
    _remember_call(key_path, call)
    client = HubClient(ctx.data, ctx.url or found.get("endpoint") or None)
    record = view.call(call) or {}
    channel = view.channel(bytes.fromhex(record["channel"])) if record.get("channel") else None
    rental = Rental(client, key, key_path, view.source.genesis.network, found, call, channel)
    try:
        status = rental.wait_for_grant(timeout=60 + 10 * view.source.constants.BLOCK_INTERVAL / 1000)
    except RentError as exc:
        fail(str(exc))
    except KeyboardInterrupt:
        fail(f"stopped waiting; the call is on chain: `hub market end {call.hex()} --key {key_path}` ends it once "
             "the hub has seen it, `hub market refund` takes the deposit back if the owner never returns it")
    until = (status.get("grant") or {}).get("not_after")
    click.echo(f"access granted for {', '.join(found.get('commands', []))}" + (f" until {_when(until)}" if until else ""))
    example = (found.get("commands") or ["<entity>.<command>"])[0].replace(".", " ", 1)
    click.echo(f"  control it: hub device call {status.get('device_id') or '<device id>'} {example} --key {key_path}"
               + ("" if ctx.url is None and not found.get("endpoint") else f" --url {client.url}"))
    if terms["kind"] == "prepaid":
        if for_ms is None:
            return
        left = (until - time.time() * 1000) if until else for_ms  # no sleeping past the paid window
        try:
            time.sleep(max(0.0, min(for_ms, left)) / 1000)
        except KeyboardInterrupt:
            pass
        _end(rental, key_path)
        return
    rental.start(status)
    # --for counts from when the hub opened access (what usage is measured from), not from when
    # this command noticed it: finality and polling had billed 10 s more than asked for.
    opened = (status.get("grant") or {}).get("not_before") or time.time() * 1000
    stop_at = None if for_ms is None else opened + for_ms
    try:
        while stop_at is None or time.time() * 1000 < stop_at:
            try:
                now = rental.status() or {}
                if now.get("state") not in (None, "open"):  # the hub ended it: its maximum duration, unpaid use
                    click.echo(f"  the hub ended the rental ({now.get('end_reason') or now.get('state')})")
                    break
                paid = rental.pay()
            except RentError as exc:
                click.secho(f"  {exc}", fg="yellow", err=True)
            else:
                _progress(paid, terms)
                if paid["exhausted"]:
                    click.echo("  the channel's deposit is used up: ending the rental")
                    break
            time.sleep(every)
    except KeyboardInterrupt:
        click.echo("  ending the rental")
    try:
        _progress(rental.pay(final=True), terms)
    except RentError as exc:
        click.secho(f"  final cheque: {exc}", fg="yellow", err=True)
    _end(rental, key_path)
    click.echo(f"used {rental.usage} {'milli-units' if terms.get('meter') else 'ms'}, paid {ruff(rental.cost)}")


def _progress(paid: dict[str, Any], terms: dict[str, Any]) -> None:
    from hub.market.units import ruff

    usage = paid["usage"]
    used = f"{usage / 1000:g} {'units' if terms.get('meter') else 's'}"
    answer = paid["answer"]
    reason = answer.get("reason") or answer.get("error")
    note = "" if answer.get("ok") else f" (cheque not taken: {reason}: {answer.get('message')})"
    click.echo(f"  used {used}, cost {ruff(paid['cost'])}{note}")


def _end(rental: Any, key_path: Path) -> None:
    from hub.identity.cli import next_counter
    from hub.market.renter import RentError

    try:
        now = rental.status() or {}
        if now.get("state") not in (None, "open"):
            click.echo(f"the rental has ended ({now.get('end_reason') or now.get('state')}); the owner's hub answers "
                       "with its return")
            return
        rental.end(next_counter(key_path, None))
    except RentError as exc:
        if exc.status is None:  # the hub cannot be reached: the call stays open there until it can
            fail(f"{exc}; `hub market end {rental.call.hex()} --key {key_path}` ends it once the hub answers "
                 "(your cheques so far are kept beside the key)")
        if exc.status != 409:
            fail(str(exc))
        click.echo("the rental has ended (the hub ended it a moment before); the owner's hub answers with its return")
        return
    click.echo("ended; the owner's hub answers with its return (the rest of the deposit comes back with it)")


def _calls_file(key_path: Path) -> Path:
    return key_path.with_name(key_path.name + ".calls")


def _remember_call(key_path: Path, call: bytes) -> None:
    """The calls this key made, beside it: `end`, `review` and `refund` default to the latest."""
    with open(_calls_file(key_path), "a") as fh:
        fh.write(call.hex() + "\n")


def _call_or_latest(call: str | None, key_path: Path) -> bytes:
    if call is not None:
        return _hash_arg(call, "CALL")
    try:
        lines = _calls_file(key_path).read_text().split()
    except OSError:
        lines = []
    if not lines:
        fail(f"no CALL given, and {key_path} has rented nothing with `hub market rent` on this machine")
    return bytes.fromhex(lines[-1])


def _wait_returned(view: Any, raw: bytes, seconds: float) -> dict[str, Any] | None:
    """The call on chain once it is no longer open (the owner's return, or a refund), or as it is then."""
    deadline = time.monotonic() + seconds
    record = view.call(raw)
    while record is not None and record.get("status") == "open" and time.monotonic() < deadline:
        time.sleep(0.25)
        record = view.call(raw)
    return record


@market.command()
@click.argument("call", required=False)
@click.option("--wait", "wait_s", default=60.0, show_default=True, type=click.FloatRange(0, 3600),
              help="Seconds to wait for the owner's return when the call is still open.")
@key_option
@rpc_option
@connection_options
@pass_ctx
def end(ctx: Ctx, call: str | None, wait_s: float, key_path: Path, rpc_url: str | None) -> None:
    """End CALL now (default: this key's latest rental), with a request signed by your key: access
    closes, the charge is fixed, and the owner's hub answers with its return, which this waits for."""
    from hub.chain.node.files import KeyFileError, read_key
    from hub.client import HubClient
    from hub.market.chainview import open_market
    from hub.market.renter import RentError, Rental
    from hub.market.units import ruff

    raw = _call_or_latest(call, key_path)
    try:
        key = read_key(key_path)
    except KeyFileError as exc:
        fail(str(exc))
    view = open_market(_chain_dir(ctx), rpc_url)
    record = view.call(raw)
    if record is None:
        fail(f"no call {raw.hex()} on this chain")
    if record.get("renter") != key.public_key.hex():
        fail("only the call's renter may end it; this key is not its renter")
    found = view.contract(bytes.fromhex(record["contract"]))
    client = HubClient(ctx.data, ctx.url or found.get("endpoint") or None)
    rental = Rental(client, key, key_path, view.source.genesis.network, found, raw, None)
    if record.get("status") == "open":
        from hub.identity.cli import next_counter

        try:
            answer = rental.end(next_counter(key_path, None))
        except RentError as exc:
            if exc.status != 409:  # 409: the hub ended it already (its window closed); its return follows
                fail(str(exc))
            click.echo(f"call {raw.hex()} had ended already: {exc}")
        else:
            click.echo(f"call {raw.hex()} ended: access closed" +
                       (f", charge {ruff(answer['used'])}" if answer.get("used") is not None else ""))
    record = _wait_returned(view, raw, wait_s)
    if record.get("status") == "open":
        fail(f"the owner has not returned call {raw.hex()[:16]}… within {wait_s:g} s; if it never does, "
             f"`hub market refund {raw.hex()}` takes the deposit back after the refund timeout")
    if record.get("status") == "returned":
        back = max(0, record.get("deposit", 0) - (record.get("used") or 0))
        click.echo(f"returned by the owner: used {ruff(record.get('used') or 0)}"
                   + (f", {ruff(back)} of the deposit back to you" if record.get("deposit") else ""))
    else:
        click.echo(f"call {raw.hex()[:16]}… is {record.get('status')}")


@market.command()
@click.argument("call", required=False)
@click.option("--comment", default="", help="What went wrong (at most 256 characters).")
@key_option
@rpc_option
@yes_option
@connection_options
@pass_ctx
def review(ctx: Ctx, call: str | None, comment: str, key_path: Path, rpc_url: str | None, yes: bool) -> None:
    """A negative review of a returned CALL (default: this key's latest rental; its renter only,
    within the review period after the return)."""
    from hub.chain.node.files import KeyFileError, read_key
    from hub.market.chainview import open_market

    raw = _call_or_latest(call, key_path)
    call = raw.hex()
    try:
        key = read_key(key_path)
    except KeyFileError as exc:
        fail(str(exc))
    view = open_market(_chain_dir(ctx), rpc_url)
    record = view.call(raw)
    if record is None:
        fail(f"no call {call} on this chain")
    if record.get("renter") != key.public_key.hex():
        fail("only the call's renter may review it; this key is not its renter")
    if record.get("status") == "open":
        click.echo("the call is not returned yet: waiting for the owner's return (a review follows it)", err=True)
        record = _wait_returned(view, raw, 60)
    if record.get("status") != "returned":
        fail(f"call {call[:16]}… is {record.get('status')}: only a returned call can be reviewed")
    _confirm_and_submit(view.source, key, "review", {"call": raw, "comment": comment},
                        [f"Negative review of call {call[:16]}… (contract {str(record.get('contract'))[:16]}…)"], yes)


@market.command()
@click.argument("target")
@key_option
@rpc_option
@yes_option
@connection_options
@pass_ctx
def refund(ctx: Ctx, target: str, key_path: Path, rpc_url: str | None, yes: bool) -> None:
    """Take a deposit back: a CALL the owner never returned (after the refund timeout), or a CHANNEL
    whose challenge period is over (pays the owner what the closing cheque covers, you the rest)."""
    from hub.chain.node.files import KeyFileError, read_key
    from hub.market.chainview import open_market
    from hub.market.units import ruff

    raw = _hash_arg(target, "CALL or CHANNEL")
    try:
        key = read_key(key_path)
    except KeyFileError as exc:
        fail(str(exc))
    view = open_market(_chain_dir(ctx), rpc_url)
    record = view.call(raw)
    if record is not None:
        what = f"Refund of call {target[:16]}…: status {record.get('status')}, deposit {ruff(record.get('deposit', 0))}"
    else:
        chan = view.channel(raw)
        if chan is None:
            fail(f"no call or channel {target} on this chain")
        what = (f"Pay out channel {target[:16]}…: deposit {ruff(chan.get('deposit', 0))}, "
                f"{_channel_state(chan)}")
    _confirm_and_submit(view.source, key, "refund", {"target": raw}, [what], yes)


@market.group(invoke_without_command=True)
@click.option("--key", "key_path", type=click.Path(dir_okay=False, exists=True, path_type=Path),
              help="Your key file (default <data>/chain/keys/owner.key).")
@rpc_option
@json_option
@connection_options
@click.pass_context
def channel(click_ctx: click.Context, key_path: Path | None, rpc_url: str | None, as_json: bool) -> None:
    """Your channels (renter): payee, deposit, withdrawn, your last cheque, closing. `channel close` closes one."""
    if click_ctx.invoked_subcommand is not None:
        return
    from hub.chain.cli_support import read_key_file
    from hub.market.chainview import open_market
    from hub.market.renter import ChequeBook
    from hub.market.units import ruff

    ctx: Ctx = click_ctx.find_object(Ctx)
    key = read_key_file(key_path, _chain_dir(ctx))
    rows = open_market(_chain_dir(ctx), rpc_url).channels(key.public_key)
    book = ChequeBook(key_path or _chain_dir(ctx) / "keys" / "owner.key")
    for r in rows:
        r["signed"] = book.amount(r["id"])
    if as_json:
        emit_json(rows)
        return
    table("Channels", ["channel", "payee", "deposit", "withdrawn", "your last cheque", "closing"],
          [[r["id"], str(r.get("payee"))[:16] + "…", ruff(r.get("deposit", 0)), ruff(r.get("withdrawn", 0)),
            ruff(r["signed"]), _channel_state(r)] for r in rows])


def _channel_state(row: dict[str, Any]) -> str:
    from hub.market.units import ruff

    if row.get("closed"):
        return f"paid out (block {row['closed']})"
    if row.get("challenge_ends"):
        return f"closing at {ruff(row.get('closing') or 0)}; challenge until {_when(row['challenge_ends'])}"
    return "open"


@channel.command("close")
@click.argument("channel_id")
@key_option
@rpc_option
@yes_option
@connection_options
@pass_ctx
def channel_close(ctx: Ctx, channel_id: str, key_path: Path, rpc_url: str | None, yes: bool) -> None:
    """Close CHANNEL_ID alone, with your last cheque: the challenge period starts, the owner may answer
    with a newer cheque, then `hub market refund CHANNEL_ID` pays out."""
    from hub.chain.node.files import KeyFileError, read_key
    from hub.market.chainview import open_market
    from hub.market.renter import ChequeBook
    from hub.market.units import ruff

    raw = _hash_arg(channel_id, "CHANNEL_ID")
    try:
        key = read_key(key_path)
    except KeyFileError as exc:
        fail(str(exc))
    view = open_market(_chain_dir(ctx), rpc_url)
    chan = view.channel(raw)
    if chan is None:
        fail(f"no channel {channel_id} on this chain")
    book = ChequeBook(key_path)
    latest = book.latest(raw.hex())
    cheque = None
    if latest is not None:
        from hub.crypto.statements import Signed

        cheque = Signed.from_json(latest).to_body()
    _confirm_and_submit(view.source, key, "settle", {"channel": raw, "cheque": cheque, "close": True},
                        [f"Close channel {channel_id[:16]}…: deposit {ruff(chan.get('deposit', 0))}, your last cheque "
                         f"{ruff(book.amount(raw.hex()))}; the owner may answer with a newer one during the challenge"],
                        yes)


__all__ = ["market"]


@market.command()
@click.option("--rpc", "rpcs", multiple=True, required=True, metavar="URL",
              help="A full node's RPC URL (repeat for several): it answers a renter's close while this hub is away.")
@json_option
@connection_options
@pass_ctx
def watch(ctx: Ctx, rpcs: tuple[str, ...], as_json: bool) -> None:
    """Hand this hub's latest cheques to full nodes that answer closes for it (docs/cheques.md).
    `market: {watchers: [URL]}` in the configuration does the same every few seconds."""
    from hub.market.units import ruff

    answer = call_api(ctx, lambda c: c.post("/api/market/watch", {"rpc": list(rpcs)}))
    if as_json:
        emit_json(answer)
        return
    rows = answer.get("handed", [])
    if not rows:
        click.echo("Nothing new to hand over: every channel's latest cheque is with these nodes already.")
        return
    table("Cheques handed over", ["node", "channel", "amount", "kept"],
          [[r["watcher"], r["channel"][:16] + "…", ruff(r.get("amount", 0)) if r.get("ok") else "",
            "yes" if r.get("ok") else f"no: {r.get('error')}: {r.get('message', '')}"] for r in rows])

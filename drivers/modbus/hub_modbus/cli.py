"""``hub modbus scan|read|profiles``: the tools for writing a register map, without a running hub.

They open the port themselves, so stop the hub first if it uses the same serial port (two programs
on one RS-485 adapter garble each other's frames).
"""

from __future__ import annotations

import asyncio
import json
import re
import sys

import click

from hub_modbus import codec, profiles

_HOSTPORT = re.compile(r"^(?:(?P<scheme>tcp|rtu\+tcp)://)?(?P<host>[^/:]+|\[[^\]]+\])(?::(?P<port>\d+))?$")


def link_config(target: str, baudrate: int, parity: str, stopbits: int, timeout: float):
    """A connection model from what a user types: a serial path, host[:port], tcp:// or rtu+tcp://."""
    from hub_modbus.config import RtuConnection, RtuOverTcpConnection, TcpConnection

    common = dict(timeout=timeout, retries=0, reconnect_max=1)
    if target.startswith("/") or target.upper().startswith("COM"):
        return RtuConnection(type="rtu", port=target, baudrate=baudrate, parity=parity, stopbits=stopbits, **common)
    m = _HOSTPORT.match(target)
    if not m:
        raise click.BadParameter(f"{target!r} is neither a serial port path nor host[:port]")
    cls = RtuOverTcpConnection if m["scheme"] == "rtu+tcp" else TcpConnection
    return cls(type="rtu_over_tcp" if cls is RtuOverTcpConnection else "tcp", host=m["host"].strip("[]"),
               port=int(m["port"] or 502), **common)


def parse_ids(text: str) -> list[int]:
    ids: list[int] = []
    for part in text.split(","):
        first, _, last = part.strip().partition("-")
        try:
            lo, hi = int(first), int(last or first)
        except ValueError:
            raise click.BadParameter(f"{part!r} is not an id or a range like 1-247") from None
        if not 0 <= lo <= hi <= 255:
            raise click.BadParameter(f"{part!r}: ids are 0-255")
        ids.extend(range(lo, hi + 1))
    return ids


def link_options(fn):
    for option in reversed([
        click.option("--baudrate", default=9600, show_default=True, help="Serial only."),
        click.option("--parity", type=click.Choice(["N", "E", "O"]), default="N", show_default=True),
        click.option("--stopbits", type=click.Choice(["1", "2"]), default="1", show_default=True),
        click.option("--timeout", default=0.3, show_default=True, help="Seconds to wait for each answer."),
        click.option("--json", "as_json", is_flag=True, help="Machine-readable output."),
    ]):
        fn = option(fn)
    return fn


async def _with_bus(config, work):
    import logging

    from hub_modbus.bus import ModbusBus

    logging.getLogger("pymodbus").setLevel(logging.CRITICAL)
    bus = ModbusBus("cli", config)
    try:
        return await work(bus)
    finally:
        bus.close()


@click.group()
def modbus() -> None:
    """Modbus tools: find devices, read raw registers, list device profiles."""


@modbus.command()
@click.argument("target")
@click.option("--ids", default="1-247", show_default=True, help="Ids to try: 1-10,17")
@click.option("--register", type=click.Choice(["holding", "input", "coil", "discrete_input"]), default="holding",
              show_default=True, help="What to read as a probe.")
@click.option("--address", default=0, show_default=True)
@link_options
def scan(target, ids, register, address, baudrate, parity, stopbits, timeout, as_json) -> None:
    """Find the device ids that answer on TARGET (a serial port path, or host[:port]).

    A device that answers with an exception (it has no register at the probe address) still counts
    as found: it is there."""
    from hub_modbus.bus import BusError, DeviceException

    config = link_config(target, baudrate, parity, int(stopbits), timeout)
    wanted = parse_ids(ids)

    async def work(bus):
        found = []
        for unit in wanted:
            try:
                values = await bus.read(register, unit, address, 1)
                found.append({"device_id": unit, "answer": f"{register} {address} = {values[0]}"})
            except DeviceException as exc:
                if not exc.means_absent:
                    found.append({"device_id": unit, "answer": str(exc).split(": ", 1)[-1]})
            except BusError as exc:
                if not bus.connected and "cannot open" in str(exc):
                    raise click.ClickException(str(exc)) from None
        return found

    found = asyncio.run(_with_bus(config, work))
    if as_json:
        click.echo(json.dumps({"target": target, "found": found}, indent=2))
        return
    for row in found:
        click.echo(f"id {row['device_id']:>3}: {row['answer']}")
    click.echo(f"{len(found)} device(s) answered on {target} (tried {len(wanted)} id(s))", err=True)


@modbus.command()
@click.argument("target")
@click.option("--device-id", "-i", default=1, show_default=True)
@click.option("--register", type=click.Choice(["holding", "input", "coil", "discrete_input"]), default="holding",
              show_default=True)
@click.option("--address", "-a", default=0, show_default=True, help="Zero-based protocol address.")
@click.option("--count", "-c", default=1, show_default=True, help="Registers (or bits) to read.")
@click.option("--type", "data_type", type=click.Choice(sorted(codec.WIDTH) + ["string"]),
              help="Also decode the registers as this type, value after value.")
@click.option("--byte-order", type=click.Choice(["big", "little"]), default="big", show_default=True)
@click.option("--word-order", type=click.Choice(["big", "little"]), default="big", show_default=True)
@link_options
def read(target, device_id, register, address, count, data_type, byte_order, word_order, baudrate, parity,
         stopbits, timeout, as_json) -> None:
    """Read raw registers from one device, to check a map against the device's documentation."""
    from hub_modbus.bus import BusError, DeviceException

    config = link_config(target, baudrate, parity, int(stopbits), timeout)
    try:
        values = asyncio.run(_with_bus(config, lambda bus: bus.read(register, device_id, address, count)))
    except (BusError, DeviceException) as exc:
        raise click.ClickException(str(exc)) from None
    decoded = []
    if data_type and register in ("holding", "input"):
        step = count if data_type == "string" else codec.WIDTH[data_type]
        for start in range(0, count - step + 1, step):
            words = values[start:start + step]
            decoded.append({"address": address + start, "value": codec.decode(
                words, data_type, byte_order=byte_order, word_order=word_order, bit=0)})
    if as_json:
        click.echo(json.dumps({"register": register, "address": address, "values": values, "decoded": decoded}))
        return
    for offset, value in enumerate(values):
        shown = str(value) if isinstance(value, bool) else f"{value:>5}  0x{value:04x}"
        click.echo(f"{register} {address + offset:>5}: {shown}")
    for row in decoded:
        click.echo(f"{data_type} at {row['address']}: {row['value']}")


@modbus.command("profiles")
def list_profiles() -> None:
    """The shipped device profiles (use as `profile: NAME`)."""
    for name in profiles.available():
        data = profiles.load(name)
        click.echo(f"{name:<16} {data.get('manufacturer', '')} {data.get('model', '')}: "
                   f"{len(data['entities'])} entities")
    sys.stdout.flush()

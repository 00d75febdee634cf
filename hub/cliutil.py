"""What every ``hub`` subcommand shares: the context (data directory, API address, token), its
options, and output as tables or JSON. A module of its own so that subcommands living elsewhere
(``hub rules``, ``hub chain``, a driver's ``hub modbus``) share them with ``hub/cli.py``."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import click

from hub.client import ClientError, HubClient

DEFAULT_DATA = "hub-data"


class Ctx:
    def __init__(self, data: Path, url: str | None, token: str | None) -> None:
        self.data = data
        self.url = url
        self.token = token

    def client(self) -> HubClient:
        return HubClient(self.data, self.url, self.token)


pass_ctx = click.make_pass_decorator(Ctx)


def _override(field: str):
    def callback(click_ctx: click.Context, _param: click.Parameter, value: Any) -> None:
        if value is not None:
            setattr(click_ctx.find_object(Ctx), field, value)

    return callback


def connection_options(fn):
    """``--data``, ``--url`` and ``--token`` are accepted after the command too (``hub run --data X``),
    which is where people type them."""
    fn = click.option("--token", expose_value=False, callback=_override("token"), help="API token.")(fn)
    fn = click.option("--url", expose_value=False, callback=_override("url"), help="API of a running hub.")(fn)
    return click.option("--data", expose_value=False, type=click.Path(file_okay=False, path_type=Path),
                        callback=_override("data"), help="Data directory (default ./hub-data).")(fn)


json_option = click.option("--json", "as_json", is_flag=True, help="Machine-readable JSON output.")


def fail(message: str, code: int = 1) -> None:
    click.secho(f"Error: {message}", fg="red", err=True)
    sys.exit(code)


def emit_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, ensure_ascii=False))


def table(title: str | None, columns: list[str], rows: list[list[Any]]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    cells = [["" if v is None else str(v) for v in row] for row in rows]
    t = Table(title=title, show_lines=False, header_style="bold")
    for i, col in enumerate(columns):
        # Ids are what people copy into the next command: never break them across lines.
        t.add_column(col, overflow="fold", no_wrap=i == 0)
    for row in cells:
        t.add_row(*row)
    # When even the narrowest layout does not fit (a 64-digit contract id in an 80-column terminal
    # squeezed every other column to nothing), each row is printed as "column: value" lines instead.
    if cells and len(columns) > 1 and _narrowest(columns, cells) > console.width:
        width = max(len(c) for c in columns)
        if title:
            console.print(title, style="bold", highlight=False)
        for row in cells:
            console.print()
            for col, value in zip(columns, row):
                console.print(f"{col:>{width}}: {value}", markup=False, highlight=False, soft_wrap=True)
        return
    console.print(t)


def _narrowest(columns: list[str], cells: list[list[str]]) -> int:
    """The width a table needs with its first column whole and every other at least six characters
    wide (or its longest word, if shorter): narrower than that, its text is unreadable."""
    first = max(len(r[0]) for r in [columns] + cells)
    rest = 0
    for i in range(1, len(columns)):
        longest = max(len(word) for r in [columns] + cells for word in (r[i].split() or [""]))
        rest += 3 + min(longest, 6)
    return 4 + first + rest


def call_api(ctx: Ctx, fn):
    try:
        return fn(ctx.client())
    except ClientError as exc:
        fail(str(exc))


def ago(ts: float | None) -> str:
    """``12s ago``, ``5m ago``, ``3h ago``, ``2d ago`` or ``never``: when a device was last heard, in the
    drivers' listings (``hub zigbee devices``, ``hub ble scan``)."""
    if not ts:
        return "never"
    seconds = max(0, int(time.time() - ts))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit} ago"
    return f"{seconds}s ago"

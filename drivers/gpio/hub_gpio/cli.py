"""``hub gpio chips|lines``: what the board has, read from gpiod on this machine directly (not through
the running hub): listing chips and lines needs no line request, so it works beside a running hub."""

from __future__ import annotations

import os

import click

from hub.cliutil import emit_json, fail, json_option, table

dev_option = click.option("--dev", "dev_dir", default=lambda: os.environ.get("HUB_GPIO_DEV", "/dev"),
                          show_default="/dev", help="Where the gpiochipN device nodes are.")


@click.group()
def gpio() -> None:
    """GPIO chips and lines of this board (libgpiod v2)."""


@gpio.command("chips")
@dev_option
@json_option
def chips(dev_dir: str, as_json: bool) -> None:
    """The GPIO chips: name, label (e.g. pinctrl-rp1 on a Pi 5), number of lines."""
    from hub_gpio.chips import list_chips

    found = list_chips(dev_dir)
    if as_json:
        emit_json(found)
        return
    if not found:
        click.echo(f"no GPIO chips found in {dev_dir} (no gpiochipN device; on a Pi, is this the Pi?)")
        return
    table("GPIO chips", ["chip", "label", "lines", "path"],
          [[c["name"], c["label"] or c.get("error", ""), c["lines"], c["path"]] for c in found])


@gpio.command("lines")
@click.argument("chip", required=False)
@dev_option
@json_option
def lines(chip: str | None, dev_dir: str, as_json: bool) -> None:
    """The lines of CHIP (gpiochipN or a path; every chip if absent): name, in use by whom, settings."""
    from hub_gpio.chips import chip_path, describe_oserror, list_chips, list_lines

    names = [chip] if chip else [c["name"] for c in list_chips(dev_dir)]
    if not names:
        if as_json:
            emit_json({})
            return
        click.echo(f"no GPIO chips found in {dev_dir}")
        return
    result = {}
    for name in names:
        try:
            result[name] = list_lines(name, dev_dir)
        except OSError as exc:
            fail(f"chip {name}: {describe_oserror(exc, chip_path(name, dev_dir))}")
    if as_json:
        emit_json(result)
        return
    for name, rows in result.items():
        table(f"{name} lines", ["offset", "name", "used by", "direction", "bias", "active low", "edge", "debounce"],
              [[r["offset"], r["name"], r["consumer"] if r["used"] else "", r["direction"], r["bias"],
                "yes" if r["active_low"] else "", r["edge"] if r["edge"] != "none" else "",
                f"{r['debounce'] * 1000:g} ms" if r["debounce"] else ""] for r in rows])

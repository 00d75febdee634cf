"""Device profiles: register maps of real products, shipped as YAML package data.

A user writes ``profile: sdm120`` and an address instead of copying forty register addresses out of
a PDF. A profile is the same list of entity entries a user would write (see
:class:`hub_modbus.entity_config.EntityConfig`) plus ``defaults`` applied to each and a few
device-wide facts (maker, model, largest request the device accepts). Each file cites the public
document it was taken from, so a reviewer can check every address.
"""

from __future__ import annotations

from functools import cache
from importlib import resources
from typing import Any

import yaml

_DEVICE_KEYS = {"manufacturer", "model", "description", "source", "max_gap", "max_registers", "max_bits",
                "poll_interval", "defaults", "entities"}


def _folder():
    # The YAML files sit in the folder ``profiles/`` beside this module of the same name; the module
    # shadows the folder as an import, so the folder is reached as data of the package.
    return resources.files("hub_modbus").joinpath("profiles")


def available() -> list[str]:
    return sorted(p.name.removesuffix(".yaml") for p in _folder().iterdir()
                  if p.name.endswith(".yaml"))


@cache
def load(name: str) -> dict[str, Any]:
    """The profile's raw data with ``defaults`` merged into each entity; ``KeyError`` if unknown."""
    if name not in available():
        raise KeyError(f"unknown profile {name!r}; shipped profiles: {', '.join(available())}")
    text = (_folder() / f"{name}.yaml").read_text(encoding="utf-8")
    data = yaml.safe_load(text)
    unknown = set(data) - _DEVICE_KEYS
    if unknown:  # a broken shipped file is our bug; say so plainly
        raise ValueError(f"profile {name}: unknown keys {sorted(unknown)}")
    defaults = data.get("defaults") or {}
    data["entities"] = [{**defaults, **entity} for entity in data.get("entities") or []]
    return data

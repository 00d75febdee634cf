"""Ruff Hub: an edge hub whose devices can be automated locally and rented out on the Ruff chain."""

import pluggy

__version__ = "0.1.0"

#: Mark a plugin's hook implementations: ``@hookimpl def hub_discover(hub): ...``
hookimpl = pluggy.HookimplMarker("ruffhub")

__all__ = ["__version__", "hookimpl"]

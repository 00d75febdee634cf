"""Finding plugins and calling their hooks without letting one break another.

Plugins come from the ``ruffhub.plugins`` entry-point group (how every driver in ``drivers/`` and
``plugins/`` is installed) and, for quick local work and tests, from ``*.py`` files in a plugins
directory (``hub run --plugins-dir DIR``), as in datasette. A plugin that fails to import is recorded
with its error and the others load; ``RUFFHUB_NO_ENTRYPOINTS=1`` skips the entry points so a test can
choose exactly which plugins run (simonw/llm and datasette do the same).
"""

from __future__ import annotations

import asyncio
import importlib
import importlib.util
import inspect
import logging
import os
import sys
import traceback
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import pluggy

from hub import hookspecs

log = logging.getLogger("hub.plugins")

ENTRY_POINT_GROUP = "ruffhub.plugins"
#: Parts of the hub itself that are plugins, registered exactly like installed ones (name, module).
#: They load even with RUFFHUB_NO_ENTRYPOINTS, since they are the hub.
BUILTIN_PLUGINS: tuple[tuple[str, str], ...] = (("chain", "hub.chain.embedded"),)
HOOK_NAMES = tuple(
    name for name, obj in vars(hookspecs).items() if name.startswith("hub_") and callable(obj)
)


@dataclass
class PluginInfo:
    """What ``hub plugins`` shows for one plugin."""

    name: str
    source: str  # "entry point ruffhub-demo 0.1.0", "file /path/x.py"
    status: str = "loaded"  # loaded, import_failed, config_error, not_configured, setting_up, running, failed, restarting, stopped
    error: str | None = None
    hooks: list[str] = field(default_factory=list)
    restarts: int = 0
    configured: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "source": self.source,
            "status": self.status,
            "error": self.error,
            "hooks": self.hooks,
            "restarts": self.restarts,
            "configured": self.configured,
        }


def describe_exception(exc: BaseException) -> str:
    """One line for tables and the API; the full traceback goes to the log."""
    last = traceback.extract_tb(exc.__traceback__)[-1:] if exc.__traceback__ else []
    where = f" ({Path(last[0].filename).name}:{last[0].lineno})" if last else ""
    return f"{type(exc).__name__}: {exc}{where}"


class PluginHost:
    def __init__(self) -> None:
        self.pm = pluggy.PluginManager("ruffhub")
        self.pm.add_hookspecs(hookspecs)
        self.info: dict[str, PluginInfo] = {}

    # --- loading ---------------------------------------------------------------------------------
    def load(self, plugins_dir: Path | None = None, *, entrypoints: bool | None = None) -> None:
        if entrypoints is None:
            entrypoints = os.environ.get("RUFFHUB_NO_ENTRYPOINTS", "") in ("", "0")
        for name, module in BUILTIN_PLUGINS:
            self._load_one(name, f"built-in {module}", lambda m=module: importlib.import_module(m))
        if entrypoints:
            for ep in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
                dist = f"{ep.dist.name} {ep.dist.version}" if ep.dist else ep.value
                self._load_one(ep.name, f"entry point {dist}", ep.load)
        if plugins_dir is not None:
            for path in sorted(Path(plugins_dir).glob("*.py")):
                self._load_one(path.stem, f"file {path}", lambda p=path: _import_file(p))

    def _load_one(self, name: str, source: str, loader) -> None:
        if name in self.info:
            log.error("plugin %s from %s ignored: a plugin of that name is already loaded", name, source)
            return
        info = self.info[name] = PluginInfo(name=name, source=source)
        try:
            module = loader()
            self.pm.register(module, name=name)
        except (Exception, SystemExit) as exc:  # noqa: BLE001 - any import error must be contained
            info.status, info.error = "import_failed", describe_exception(exc)
            log.error("plugin %s failed to load: %s", name, info.error, exc_info=exc)
            return
        info.hooks = sorted(
            impl_name for impl_name in HOOK_NAMES if self.impl(name, impl_name) is not None
        )

    def register(self, name: str, plugin: object, source: str = "built-in") -> None:
        """Register an object as a plugin (tests, built-ins): the same path as an entry point."""
        self._load_one(name, source, lambda: plugin)

    # --- calling ---------------------------------------------------------------------------------
    def loaded(self) -> list[str]:
        return [name for name, info in self.info.items() if info.status != "import_failed"]

    def impl(self, plugin: str, hook: str) -> pluggy.HookImpl | None:
        caller = getattr(self.pm.hook, hook)
        for impl in caller.get_hookimpls():
            if impl.plugin_name == plugin:
                return impl
        return None

    async def call_one(self, plugin: str, hook: str, *, timeout: float | None = None, **kwargs: Any) -> Any:
        """Call one plugin's implementation of a hook, awaiting it if needed. Exceptions propagate to
        the caller, who decides what a failure means for that plugin; a plugin without the hook
        returns ``None``."""
        impl = self.impl(plugin, hook)
        if impl is None:
            return None
        result = impl.function(*[kwargs[arg] for arg in impl.argnames])
        if inspect.isawaitable(result):
            result = await (asyncio.wait_for(result, timeout) if timeout else result)
        return result

    def call_one_sync(self, plugin: str, hook: str, **kwargs: Any) -> Any:
        impl = self.impl(plugin, hook)
        if impl is None:
            return None
        return impl.function(*[kwargs[arg] for arg in impl.argnames])

    def fail(self, plugin: str, status: str, exc: BaseException | str) -> None:
        info = self.info[plugin]
        info.status = status
        info.error = exc if isinstance(exc, str) else describe_exception(exc)
        if isinstance(exc, BaseException):
            log.error("plugin %s: %s", plugin, info.error, exc_info=exc)
        else:
            log.error("plugin %s: %s", plugin, info.error)


def _import_file(path: Path) -> object:
    module_name = f"hub_local_plugins.{path.stem}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(module_name, None)
        raise
    return module

"""Finding plugins and calling their hooks without letting one break another.

Plugins come from the ``ruffhub.plugins`` entry-point group (how every driver in ``drivers/`` and
``plugins/`` is installed) and, for quick local work and tests, from ``*.py`` files in a plugins
directory (``hub run --plugins-dir DIR``), as in datasette. A plugin that fails to import is recorded
with its error and the others load; ``RUFFHUB_NO_ENTRYPOINTS=1`` skips the entry points so a test can
choose exactly which plugins run (simonw/llm and datasette do the same).
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import importlib.util
import inspect
import logging
import os
import signal
import sys
import threading
import traceback
from collections.abc import Iterator
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import pluggy

from hub import hookspecs
from hub.core.supervisor import is_hub_cancellation

log = logging.getLogger("hub.plugins")

ENTRY_POINT_GROUP = "ruffhub.plugins"
#: Parts of the hub itself that are plugins, registered exactly like installed ones (name, module).
#: They load even with RUFFHUB_NO_ENTRYPOINTS, since they are the hub.
BUILTIN_PLUGINS: tuple[tuple[str, str], ...] = (
    ("chain", "hub.chain.embedded"), ("identity", "hub.identity.plugin"), ("chainctl", "hub.identity.chainctl"),
    ("anchor", "hub.identity.anchor"), ("market", "hub.market.plugin"),
    ("cheques", "hub.market.cheque_plugin"),
)
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
    stalls: int = 0  # times this plugin's code blocked the event loop (see hub.core.watchdog)
    last_stall: float | None = None  # seconds the last one lasted
    note: str | None = None  # what went wrong while it kept running: the last stall, where

    def record_stall(self, seconds: float, where: str) -> None:
        self.stalls += 1
        self.last_stall = round(seconds, 3)
        self.note = f"blocked the event loop for {seconds:.1f} s in {where}"

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "source": self.source,
            "status": self.status,
            "error": self.error,
            "hooks": self.hooks,
            "restarts": self.restarts,
            "configured": self.configured,
            "stalls": self.stalls,
            "last_stall": self.last_stall,
            "note": self.note,
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
        # What tells a stack frame's owner (see locate): the code of every function of an object
        # plugin, and the module (package) name of a module plugin.
        self._codes: dict[Any, str] = {}
        self._modules: dict[str, str] = {}

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
        except BaseException as exc:  # noqa: BLE001 - any import error must be contained, sys.exit() too
            info.status, info.error = "import_failed", describe_exception(exc)
            log.error("plugin %s failed to load: %s", name, info.error, exc_info=exc)
            return
        info.hooks = sorted(
            impl_name for impl_name in HOOK_NAMES if self.impl(name, impl_name) is not None
        )
        self._remember_code(name, module)

    def _remember_code(self, name: str, plugin: object) -> None:
        if inspect.ismodule(plugin):
            self._modules[_owning_package(plugin.__name__)] = name
            return
        # An object (tests, built-ins): its own functions only, since several may share a module.
        for klass in type(plugin).__mro__[:-1]:
            for value in vars(klass).values():
                code = getattr(inspect.unwrap(getattr(value, "__func__", value)), "__code__", None)
                if code is not None:
                    self._codes[code] = name

    def locate(self, frame: Any) -> tuple[str | None, str]:
        """Which plugin's code is running in ``frame`` or the frames that called it, innermost
        first, and where: for the watchdog, which samples the event loop thread's stack."""
        innermost = _where(frame) if frame is not None else "an unknown place"
        while frame is not None:
            plugin = self.owner(frame)
            if plugin is not None:
                return plugin, _where(frame)
            frame = frame.f_back
        return None, innermost

    def blame(self, exc: BaseException) -> tuple[str | None, str]:
        """Which plugin's code raised ``exc``, innermost first, looking only at the frames the
        exception passed through (not at whoever called the code that caught it)."""
        frames = []
        tb = exc.__traceback__
        while tb is not None:
            frames.append(tb.tb_frame)
            tb = tb.tb_next
        for frame in reversed(frames):
            plugin = self.owner(frame)
            if plugin is not None:
                return plugin, _where(frame)
        return None, _where(frames[-1]) if frames else "an unknown place"

    def owner(self, frame: Any) -> str | None:
        plugin = self._codes.get(frame.f_code)
        if plugin is None:
            module = frame.f_globals.get("__name__") or ""
            plugin = self._modules.get(_owning_package(module))
        return plugin

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
        returns ``None``.

        ``timeout`` bounds the call whether the implementation is ``async`` or not (a synchronous
        one is interrupted, see :func:`interrupt_after`); either way a ``TimeoutError`` says so.
        """
        impl = self.impl(plugin, hook)
        if impl is None:
            return None
        args = [kwargs[arg] for arg in impl.argnames]
        if inspect.iscoroutinefunction(impl.function):
            result = impl.function(*args)
        else:
            with interrupt_after(timeout, f"plugin {plugin}: {hook}"):
                result = impl.function(*args)
        if inspect.isawaitable(result):
            guarded = _guard(result)
            try:
                result = await (asyncio.wait_for(guarded, timeout) if timeout else guarded)
            except _Contained as wrapped:
                raise wrapped.original from None
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


def _owning_package(module: str) -> str:
    """The name a plugin's modules share: ``hub_modbus.bus`` -> ``hub_modbus``; a built-in
    ``hub.chain.embedded`` -> ``hub.chain``; a --plugins-dir file is a plugin of its own."""
    parts = module.split(".")
    if parts[0] == "hub_local_plugins":
        return module
    return ".".join(parts[:2]) if parts[0] == "hub" and len(parts) > 2 else parts[0]


def _where(frame: Any) -> str:
    return f"{Path(frame.f_code.co_filename).name}:{frame.f_lineno} in {frame.f_code.co_name}"


class _Contained(Exception):
    """Carries a plugin's ``SystemExit`` (or any non-``Exception``) across a task boundary: asyncio
    re-raises those out of the event loop when they reach the top of a task (``wait_for`` runs the
    awaitable in a task of its own), which would end the hub."""

    def __init__(self, original: BaseException) -> None:
        super().__init__(repr(original))
        self.original = original


async def _guard(awaitable: Any) -> Any:
    try:
        return await awaitable
    except Exception:
        raise
    except BaseException as exc:  # noqa: BLE001 - see _Contained
        if is_hub_cancellation(exc):
            raise
        raise _Contained(exc) from None


class HookTimeout(TimeoutError):
    """A synchronous hook ran past its deadline and was interrupted."""


@contextlib.contextmanager
def interrupt_after(seconds: float | None, what: str) -> Iterator[None]:
    """Raise :class:`HookTimeout` inside the code running in this block if it runs longer than
    ``seconds``: pytest-timeout's "signal" method. A synchronous hook runs on the event loop (it may
    use the loop: pymodbus's clients need it when they are made), so nothing else can stop one that
    blocks; SIGALRM interrupts a sleep, a blocking read or a busy Python loop. It needs the main
    thread, where ``hub run`` runs its loop; elsewhere the hook is only reported by the watchdog."""
    if not seconds or threading.current_thread() is not threading.main_thread() or not hasattr(signal, "setitimer"):
        yield
        return
    armed = True

    def on_alarm(signum: int, frame: Any) -> None:
        if armed:
            raise HookTimeout(f"{what} did not finish within {seconds:g} s")

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        armed = False
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


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

"""The running hub: wires the core, the store, the plugins and the API together.

Start-up order matters for the guarantees users see: registries and last states are restored before
any plugin runs (so a driver can resume from them and rules see no spurious change), every plugin is
set up in isolation (one failing never stops the others), and the API comes up last, once there is
something to serve.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import logging
import os
import signal
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from hub import __version__
from hub.config import CORE_SECTION, ConfigIssue, CoreConfig, LoadedConfig, load_config
from hub.context import EntityHandle, PluginContext
from hub.core.bus import EventBus
from hub.core.commands import CommandRegistry, EntityUnavailable
from hub.core.events import EntityRegistered, EntityRemoved, HubStarted, HubStopping, PluginStatusChanged
from hub.core.redact import hide_secrets_in_logs, scrub
from hub.core.registry import DeviceRegistry, EntityRegistry
from hub.core.scheduler import Scheduler
from hub.core.state import State, StateMachine
from hub.core.supervisor import exits_contained_task_factory, is_hub_cancellation, supervise
from hub.core.watchdog import LoopWatchdog
from hub.devices.model import Device, EntitySpec
from hub.plugins import PluginHost, describe_exception, interrupt_after
from hub.store import Store
from hub.store.files import private_dir
from hub.store.recorder import Recorder

log = logging.getLogger("hub")

OWNER_TOKEN_FILE = "owner-token"
RUN_FILE = "run.json"
CONFIG_FILE = "configuration.yaml"


class ConfigRefused(Exception):
    """The core configuration is invalid: the hub cannot start on it."""

    def __init__(self, issues: list[ConfigIssue]) -> None:
        super().__init__("\n".join(str(i) for i in issues))
        self.issues = issues


def _check_schema(schema: Any) -> Any:
    """hub_config_schema runs before there is anything to await: an async one (or one returning
    something else than a model) would otherwise leave the plugin silently not configured."""
    if inspect.isawaitable(schema):
        getattr(schema, "close", lambda: None)()
        raise TypeError("hub_config_schema must be a plain function, not async: it returns a model class")
    if schema is not None and not (isinstance(schema, type) and issubclass(schema, BaseModel)):
        raise TypeError(f"hub_config_schema must return a pydantic model class or None, not {schema!r}")
    return schema


class Hub:
    def __init__(
        self,
        data_dir: Path,
        *,
        config_path: Path | None = None,
        plugins_dir: Path | None = None,
        now: Callable[[], float] = time.time,
        scheduler: Scheduler | None = None,
        entrypoints: bool | None = None,
    ) -> None:
        if scheduler is not None:
            now = scheduler.now
        self.data_dir = Path(data_dir).resolve()
        self.config_path = config_path if config_path is not None else self.data_dir / CONFIG_FILE
        self.plugins_dir = plugins_dir
        self.now = now
        self.scheduler = scheduler or Scheduler(now)
        self._entrypoints = entrypoints
        self.bus = EventBus()
        self.states = StateMachine(self.bus, now)
        self.store: Store | None = None
        self.devices = DeviceRegistry()
        self.entities = EntityRegistry()
        self.commands = CommandRegistry(self.entities, self.states, self.bus, now)
        self.plugins = PluginHost()
        self.contexts: dict[str, PluginContext] = {}
        self.config: LoadedConfig | None = None
        self.core = CoreConfig()
        self.routers: list[tuple[str, Any]] = []
        #: Objects one built-in part offers the others (the chain's ``ChainAccess`` under "chain",
        #: the identity gate under "identity"), so they meet through the hub, not through imports.
        self.services: dict[str, Any] = {}
        self.rule_triggers: dict[str, tuple[str, Any, Any]] = {}
        self.rule_actions: dict[str, tuple[str, Any, Any]] = {}
        self.started_at: float | None = None
        self.recorder: Recorder | None = None
        self.rules = None  # the RuleEngine, once started
        self._tasks: dict[str, asyncio.Task] = {}
        self.watchdog = LoopWatchdog(self.plugins.locate, self._on_stall)
        self.bus.on_error = self._subscriber_failed

    # --- start and stop ----------------------------------------------------------------------------
    def load_configuration(self) -> LoadedConfig:
        """Load plugins and validate the configuration against their schemas (no side effects on
        devices): what ``hub config check`` runs too."""
        self.plugins.load(self.plugins_dir, entrypoints=self._entrypoints)
        schemas: dict[str, Any] = {}
        for name in self.plugins.loaded():
            try:
                schemas[name] = _check_schema(self.plugins.call_one_sync(name, "hub_config_schema"))
            except BaseException as exc:  # noqa: BLE001 - plugin code: sys.exit() included
                self.plugins.fail(name, "failed", exc)
        path = self.config_path if self.config_path.exists() else None
        self.config = load_config(path, schemas)
        hide_secrets_in_logs(self.config.secrets)
        self.core = self.config.core
        return self.config

    async def start(self) -> None:
        private_dir(self.data_dir)
        self.watchdog.start()  # before any plugin code runs: set-up can block the loop too
        config = self.load_configuration()
        core_issues = [i for i in config.issues if (i.key or "").split(".")[0] in ("", CORE_SECTION)]
        if core_issues:
            raise ConfigRefused(core_issues)
        self.commands.timeout = self.core.command_timeout
        self.store = Store(self.data_dir)
        self._restore()
        self.recorder = Recorder(
            self.store, self.bus, commit_interval=self.core.commit_interval, history_days=self.core.history_days, now=self.now
        )
        self.recorder.start()
        self._sort_plugins_by_config(config)
        for name in self.plugins.loaded():
            if self.plugins.info[name].status == "loaded" and self.plugins.info[name].configured:
                await self._start_plugin(name)
        await self._start_rules()
        self.started_at = self.now()
        self.bus.publish(HubStarted(self.started_at))

    async def _start_rules(self) -> None:
        """Rules start once every plugin has added its devices, so their entity ids can be checked."""
        from hub.rules.engine import RuleEngine

        self.rules = RuleEngine(self)
        loaded, issues = self.load_rules()
        await self.rules.start(loaded, issues)
        self._log_rules(issues)

    def load_rules(self):
        from hub.rules.loader import load_rules

        assert self.rules is not None
        return load_rules(self.rules.rules_ctx, self.config_path.parent, embedded=not self.config_path.exists())

    async def reload_rules(self) -> dict:
        loaded, issues = self.load_rules()
        summary = self.rules.apply(loaded, issues)
        self._log_rules(issues)
        return summary

    def _log_rules(self, issues) -> None:
        for issue in issues:
            log.error("rules: %s", issue)
        good = sum(1 for r in self.rules.rules.values() if r.rule is not None)
        log.info("rules: %d loaded, %d refused", good, len(self.rules.rules) - good)

    def _restore(self) -> None:
        assert self.store is not None
        self.devices.load(self.store.load_devices())
        self.entities.load(self.store.load_entities())
        self.devices.persist_to(self.store.save_device)
        self.entities.persist_to(self.store.save_entities)
        for row in self.store.load_last_states():
            if row.entity_id in self.entities:
                # The driver has not confirmed it yet: keep the value, but say so.
                self.states.restore(
                    State(row.entity_id, row.value, row.attributes, False, row.last_changed, row.last_updated)
                )
        log.info("restored %d devices, %d entities, %d states", len(self.devices), len(self.entities), len(self.states))

    def _sort_plugins_by_config(self, config: LoadedConfig) -> None:
        issues_by_plugin: dict[str, list[ConfigIssue]] = {}
        for issue in config.issues:
            issues_by_plugin.setdefault((issue.key or "").split(".")[0].split("[")[0], []).append(issue)
        for name in self.plugins.loaded():
            info = self.plugins.info[name]
            if info.status != "loaded":
                continue
            if name in issues_by_plugin:
                info.configured = True
                self.plugins.fail(name, "config_error", "; ".join(str(i) for i in issues_by_plugin[name]))
            elif name in config.plugin_configs:
                info.configured = True
            elif self.plugins.impl(name, "hub_config_schema") is None:
                info.configured = True  # a plugin with no settings runs whenever it is installed
                config.plugin_configs[name] = {}
            elif getattr(self.plugins.pm.get_plugin(name), "RUNS_UNCONFIGURED", False):
                # A part of the hub that runs on its defaults (the identity gate: a device holding
                # its key takes only signed commands, the owner's included).
                info.configured = True
                config.plugin_configs[name] = _check_schema(self.plugins.call_one_sync(name, "hub_config_schema")).model_validate({})
            else:
                info.status = "not_configured"
        for issue in config.issues:
            section = (issue.key or "").split(".")[0]
            if section not in self.plugins.info:
                log.error("configuration: %s", issue)

    async def _start_plugin(self, name: str) -> None:
        info = self.plugins.info[name]
        ctx = self.contexts[name] = PluginContext(self, name, self.config.plugin_configs.get(name) if self.config else None)
        self._set_status(name, "setting_up")
        try:
            # Bounded whether sync or async: a sync one that blocks is interrupted (hub.hookspecs).
            await self.plugins.call_one(name, "hub_setup", timeout=self.core.setup_timeout, hub=ctx)
            await self.plugins.call_one(name, "hub_discover", timeout=self.core.setup_timeout, hub=ctx)
        except TimeoutError:
            self._fail(name, "failed", f"set-up did not finish within {self.core.setup_timeout:g} s")
            return
        except BaseException as exc:  # noqa: BLE001 - plugin code: sys.exit() included
            if is_hub_cancellation(exc):
                raise
            self._fail(name, "failed", exc)
            return
        self.register_rule_types(name, ctx)
        try:
            routes = self.plugins.call_one_sync(name, "hub_api_routes", hub=ctx)
        except BaseException as exc:  # noqa: BLE001 - plugin code: sys.exit() included
            log.error("plugin %s: hub_api_routes failed: %s", name, describe_exception(exc), exc_info=exc)
            routes = None
        for router in routes if isinstance(routes, list) else [routes] if routes is not None else []:
            self.routers.append((name, router))
        if self.plugins.impl(name, "hub_handle_command") is not None:
            self.commands.set_handler(name, self._command_handler(name, ctx))
        info.error = None
        self._set_status(name, "running")
        if self.plugins.impl(name, "hub_run") is not None:
            self._tasks[name] = asyncio.get_running_loop().create_task(self._run_plugin(name, ctx), name=f"plugin:{name}")

    def register_rule_types(self, name: str, ctx: PluginContext) -> None:
        """Collect the trigger and action types a plugin contributes to the rule engine."""
        for hook, table in (("hub_rule_triggers", self.rule_triggers), ("hub_rule_actions", self.rule_actions)):
            try:
                self.plugins.call_one_sync(name, hook, hub=ctx, register=self._registrar(name, table))
            except BaseException as exc:  # noqa: BLE001 - plugin code: sys.exit() included
                log.error("plugin %s: %s failed: %s", name, hook, describe_exception(exc), exc_info=exc)

    def _registrar(self, plugin: str, table: dict) -> Callable[..., None]:
        def register(type_name: str, schema: Any, factory: Any) -> None:
            if type_name in table:
                raise ValueError(f"{type_name!r} is already registered by plugin {table[type_name][0]!r}")
            table[type_name] = (plugin, schema, factory)

        return register

    def _command_handler(self, name: str, ctx: PluginContext):
        impl = self.plugins.impl(name, "hub_handle_command")
        sync = not inspect.iscoroutinefunction(impl.function)

        def handle(entry, command, args):
            # The plugin's own function, called directly: what it returns (a value, or a coroutine
            # for an async implementation) goes to the command registry, which awaits it if needed
            # under command_timeout. A synchronous one that blocks is interrupted at the same bound.
            kwargs = {"hub": ctx, "entity": ctx.handle_for(entry), "command": command, "args": args}
            if not sync:
                return impl.function(*[kwargs[arg] for arg in impl.argnames])
            with interrupt_after(self.commands.timeout, f"plugin {name}: {entry.entity_id} {command}"):
                return impl.function(*[kwargs[arg] for arg in impl.argnames])

        return handle

    async def notify(self, notification: dict) -> dict[str, Any]:
        """Hand a rule's notification to every running plugin that implements ``hub_notify``.

        Each plugin is called in turn with its own bound, and its failure is contained and named: a
        broken mail relay must not keep the MQTT bridge from getting the message, nor stop the hub.
        Returns ``{"delivered": {plugin: what it returned}, "errors": {plugin: message}}``.
        """
        delivered: dict[str, Any] = {}
        errors: dict[str, str] = {}
        for name, ctx in self.contexts.items():
            if self.plugins.impl(name, "hub_notify") is None or self.plugins.info[name].status != "running":
                continue
            try:
                result = await self.plugins.call_one(name, "hub_notify", timeout=self.core.command_timeout,
                                                     hub=ctx, notification=dict(notification))
            except BaseException as exc:  # noqa: BLE001 - plugin code: sys.exit() included
                if is_hub_cancellation(exc):
                    raise
                errors[name] = "did not answer within %g s" % self.core.command_timeout if isinstance(
                    exc, TimeoutError) else describe_exception(exc)
                log.warning("plugin %s: a notification was not delivered: %s", name, errors[name])
                continue
            if result is not None:
                delivered[name] = result
        return {"delivered": delivered, "errors": errors}

    async def _run_plugin(self, name: str, ctx: PluginContext) -> None:
        info = self.plugins.info[name]

        def on_start(attempt: int) -> None:
            if attempt:
                info.restarts += 1
                log.warning("plugin %s: restarting (restart %d)", name, info.restarts)
                self._set_status(name, "running")

        def on_crash(exc: BaseException, delay: float | None) -> None:
            self.mark_unavailable(name)
            if delay is None:  # raised while being cancelled: the hub is stopping, no restart
                self._fail(name, "stopped", exc)
                return
            self._fail(name, "restarting", exc)
            log.warning("plugin %s crashed; its entities are unavailable; restart in %g s", name, delay)

        await supervise(
            lambda: self.plugins.call_one(name, "hub_run", hub=ctx),
            on_crash=on_crash,
            on_start=on_start,
            backoff_max=self.core.restart_backoff_max,
        )
        if info.status == "running":
            self._set_status(name, "stopped")

    def _on_stall(self, seconds: float, plugin: str | None, where: str) -> None:
        """Called by the watchdog once the loop runs again after a stall."""
        if plugin is None or plugin not in self.plugins.info:
            log.warning("the event loop was blocked for %.1f s in %s (not in a plugin's code)", seconds, where)
            return
        info = self.plugins.info[plugin]
        info.record_stall(seconds, where)
        log.warning("plugin %s %s; the API, rules and other plugins waited (stall %d; see `hub plugins`)",
                    plugin, info.note, info.stalls)
        self.bus.publish(PluginStatusChanged(self.now(), plugin, info.status, info.error or info.note))

    def _subscriber_failed(self, exc: BaseException) -> None:
        """The bus has logged it; if a plugin's code raised, say so where ``hub plugins`` shows it."""
        plugin, where = self.plugins.blame(exc)
        if plugin is not None and plugin in self.plugins.info:
            self.plugins.info[plugin].note = f"an event subscriber raised {type(exc).__name__}: {exc}, in {where}"

    def _set_status(self, name: str, status: str) -> None:
        self.plugins.info[name].status = status
        self.bus.publish(PluginStatusChanged(self.now(), name, status, self.plugins.info[name].error))

    def _fail(self, name: str, status: str, exc: BaseException | str) -> None:
        self.plugins.fail(name, status, exc)
        if self.config is not None:  # the error is shown by the API and sent on the bus, not only logged
            info = self.plugins.info[name]
            info.error = scrub(info.error, sorted(self.config.secrets, key=len, reverse=True))
        self.bus.publish(PluginStatusChanged(self.now(), name, status, self.plugins.info[name].error))

    def mark_unavailable(self, platform: str) -> None:
        for entry in self.entities.for_platform(platform):
            self.states.set_available(entry.entity_id, False)

    async def stop(self) -> None:
        if self.rules is not None:
            # First, while every plugin and driver still runs and before anyone hears HubStopping:
            # rules triggered by the hub's shutdown send commands that must reach the devices.
            await self.rules.run_shutdown_rules()
        self.bus.publish(HubStopping(self.now()))
        if self.rules is not None:
            await self.rules.stop()
        for task in self._tasks.values():
            task.cancel()
        if self._tasks:
            # Bounded: a hub_run that swallows its cancellation must not keep the hub from stopping.
            _, pending = await asyncio.wait(self._tasks.values(), timeout=self.core.setup_timeout)
            for name, task in self._tasks.items():
                if task in pending:
                    log.error("plugin %s: hub_run did not end within %g s of being cancelled; left behind",
                              name, self.core.setup_timeout)
        for name, ctx in self.contexts.items():
            try:
                await self.plugins.call_one(name, "hub_shutdown", timeout=self.core.setup_timeout, hub=ctx)
            except TimeoutError:
                log.error("plugin %s: shutdown did not finish within %g s; left behind", name, self.core.setup_timeout)
            except BaseException as exc:  # noqa: BLE001 - plugin code: sys.exit() included
                if is_hub_cancellation(exc):
                    raise
                log.error("plugin %s: shutdown failed: %s", name, describe_exception(exc), exc_info=exc)
        if self.recorder is not None:
            await self.recorder.stop()
        await self.bus.drain()
        self.watchdog.stop()
        if self.store is not None:
            self.store.close()

    # --- used by plugin contexts -------------------------------------------------------------------
    def register_device(self, platform: str, device: Device, specs: list[EntitySpec]) -> dict[str, EntityHandle]:
        keys = [s.key for s in specs]
        if len(set(keys)) != len(keys):
            raise ValueError(f"device {device.id!r}: entity keys must be unique, got {keys}")
        now = self.now()
        entry = self.devices.register(platform, device, now)
        ctx = self.contexts[platform]
        handles: dict[str, EntityHandle] = {}
        for spec, (entity, is_new) in zip(specs, self.entities.register_all(platform, entry, device.id, specs, now)):
            handles[spec.key] = ctx.handle_for(entity)
            if entity.entity_id not in self.states:
                self.states.set(entity.entity_id, None, {"friendly_name": entity.name}, available=False)
            if is_new:
                self.bus.publish(EntityRegistered(now, entity.entity_id, entry.id, platform))
        return handles

    def remove_device(self, platform: str, device_id: str, keys: list[str] | None = None) -> list[str]:
        """Forget one of ``platform``'s devices and its entities: registry, states and store. With
        ``keys``, only those entities of it (a device that lost one of its functions keeps the
        others, untouched); the device goes too once it has no entity left."""
        full_id = f"{platform}:{device_id}"
        entry = self.devices.get(full_id)
        if entry is None or entry.platform != platform:
            raise KeyError(f"{full_id} is not a device of plugin {platform!r}")
        entities = self.entities.for_device(full_id)
        if keys is not None:
            unknown = set(keys) - {e.key for e in entities}
            if unknown:
                raise KeyError(f"{full_id} has no entities {sorted(unknown)}")
        removed = [e.entity_id for e in entities if keys is None or e.key in keys]
        for entity_id in removed:
            self.entities.remove(entity_id)
            self.states.remove(entity_id)
        whole = len(removed) == len(entities)
        if whole:
            self.devices.remove(full_id)
        if self.store is not None:
            self.store.remove_device(full_id if whole else None, removed)
        now = self.now()
        for entity_id in removed:
            self.bus.publish(EntityRemoved(now, entity_id, full_id, platform))
        return removed

    # --- owner token and run file --------------------------------------------------------------------
    def ensure_owner_token(self) -> Path | None:
        """On a fresh data directory, make one token so the API can be used at once. It goes to a
        file only its owner can read, never to the log."""
        assert self.store is not None
        path = self.data_dir / OWNER_TOKEN_FILE
        if self.store.list_tokens():
            return path if path.exists() else None
        token = self.store.create_token("owner")
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(token + "\n")
        return path

    def write_run_file(self, url: str) -> None:
        fd = os.open(self.data_dir / RUN_FILE, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(json.dumps({"url": url, "pid": os.getpid(), "version": __version__}))

    def remove_run_file(self) -> None:
        (self.data_dir / RUN_FILE).unlink(missing_ok=True)


def run_until_stopped(main: Coroutine[Any, Any, Any], *, grace: float = 5.0) -> Any:
    """``asyncio.run``, except that the tasks still running when ``main`` ends get ``grace`` seconds
    to end once cancelled, not forever: a plugin's ``hub_run`` that swallows its cancellation (a
    bare ``except:`` in its loop) kept ``hub run`` from exiting on SIGTERM. SIGINT and SIGTERM
    cancel ``main`` until it installs handlers of its own, as ``asyncio.run`` does for SIGINT."""
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    task = loop.create_task(main)
    loop.set_task_factory(exits_contained_task_factory)  # every task but main: plugins start their own
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, task.cancel)
    try:
        return loop.run_until_complete(task)
    except asyncio.CancelledError:
        raise KeyboardInterrupt from None
    finally:
        try:
            rest = [t for t in asyncio.all_tasks(loop) if not t.done()]
            for t in rest:
                t.cancel()
            if rest:
                _, stuck = loop.run_until_complete(asyncio.wait(rest, timeout=grace))
                for t in stuck:
                    log.error("task %s did not end within %g s of being cancelled; exiting without it", t.get_name(), grace)
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.run_until_complete(loop.shutdown_default_executor())
        finally:
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(sig)
            asyncio.set_event_loop(None)
            loop.close()


__all__ = ["ConfigRefused", "EntityUnavailable", "Hub", "run_until_stopped"]

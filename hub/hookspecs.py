"""The plugin contract: every hook the hub calls, in one place.

A plugin is a module (or any object) with functions named after these hooks and marked with
``@hookimpl`` (``from hub import hookimpl``). It is found through the ``ruffhub.plugins`` entry point
group, exactly like a pytest or datasette plugin::

    [project.entry-points."ruffhub.plugins"]
    coffee = "hub_coffee"

The entry point's name (``coffee``) is the plugin's name and the name of its section in
``configuration.yaml``. A plugin implements only the hooks it needs, and each implementation may take
only the arguments it uses (pluggy passes them by name).

How the hub calls hooks, so that one plugin can never break another:

* Every hook is called plugin by plugin. An exception in one plugin's implementation is logged and
  recorded against that plugin (``hub plugins`` shows it); the other plugins' implementations still run.
  "Exception" means anything raised: ``sys.exit()`` (``SystemExit``), ``KeyboardInterrupt``,
  ``GeneratorExit`` or a ``CancelledError`` the plugin raised itself are failures of that plugin like
  any other (a command's is a 502, and is in the command log); only the hub's own cancellation of a
  task passes through (``hub.core.supervisor.is_hub_cancellation``).
* Any implementation may be ``async def``; the hub awaits what comes back (datasette's
  ``await_me_maybe`` pattern; pluggy itself has no async hooks). Awaited set-up and commands are bounded
  by ``hub.setup_timeout`` and ``hub.command_timeout``, so a plugin that never returns is reported, not
  waited for.
* Synchronous implementations run on the event loop, so they may use it (make asyncio objects, as
  pymodbus's clients do when created), and they must not block: while one runs, the API, the rules
  and every other plugin wait. A synchronous ``hub_setup``, ``hub_discover`` or ``hub_shutdown`` is
  bounded by ``hub.setup_timeout`` all the same, and a synchronous ``hub_handle_command`` by
  ``hub.command_timeout`` (a 504): past it, a ``TimeoutError`` is raised inside it by
  SIGALRM (pytest-timeout's "signal" method), which interrupts a ``time.sleep``, a blocking read or a
  busy Python loop, and the plugin is ``failed``. Why not a worker thread: a hook run there could not
  use the event loop (``get_running_loop()`` fails), which broke the Modbus driver, and a thread that
  never returns cannot be stopped either. Limits: a C call that blocks without ever returning to
  Python, or a plugin that catches the ``TimeoutError`` and carries on, is not stopped; the watchdog
  still reports it.
* A watchdog thread watches the event loop's heartbeat. When it stops for more than a second, it
  samples the loop's stack, logs a warning naming the plugin whose code is on it and where, and once
  the loop runs again records the stall against that plugin: ``hub plugins`` and ``GET /api/plugins``
  show ``stalls``, ``last_stall`` (seconds) and a ``note`` saying where it blocked.
* The ``hub`` argument is the plugin's own :class:`hub.context.PluginContext`: its validated
  configuration, its logger, and methods that act on its own devices only.

Order of a start: ``hub_config_schema`` (all installed plugins) -> configuration validated ->
``hub_setup`` -> ``hub_discover`` -> ``hub_run`` started as a supervised task; ``hub_api_routes``,
``hub_rule_triggers`` and ``hub_rule_actions`` are collected once set-up is done. On stop:
``hub_shutdown``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from collections.abc import Callable

    import click
    from pydantic import BaseModel

    from hub.context import EntityHandle, PluginContext
    from hub.devices.capabilities import Args
    from hub.crypto.statements import Signed

hookspec = pluggy.HookspecMarker("ruffhub")


@hookspec
def hub_config_schema() -> "type[BaseModel] | None":
    """Return the pydantic model of this plugin's section of ``configuration.yaml``.

    The section is named after the plugin. A plugin that returns a model is set up only when its
    section is present (``demo:`` with nothing after it counts as present); one that implements no
    schema is always set up. Validation errors name the file, the line and the key, and keep only this
    plugin from starting. Unknown keys should be errors: give the model ``extra="forbid"``.
    """


@hookspec
def hub_setup(hub: "PluginContext") -> Any:
    """Prepare the plugin: open connections, load profiles, check the hardware is there.

    ``hub.config`` is the validated section. Raise to report that the plugin cannot run (the message is
    shown by ``hub plugins``); the rest of the hub starts regardless. Keep it short: a device that is
    merely offline is not a set-up failure, it is an ``unavailable`` entity that ``hub_run`` retries.
    """


@hookspec
def hub_discover(hub: "PluginContext") -> Any:
    """Find devices and add them with ``hub.add_device(Device(...), [EntitySpec(...), ...])``.

    Called after set-up. ``add_device`` returns handles by entity key; a handle's ``set(value,
    **attributes)`` writes the entity's state. The hub assigns each entity a stable ``entity_id`` from
    its device id and key, remembered across restarts, so the same device found again keeps its
    history. Entities start ``unavailable`` until the plugin sets a value.
    """


@hookspec
async def hub_run(hub: "PluginContext") -> None:
    """The plugin's long-running work: polling, reading a port, simulating a house.

    Started as a task once discovery is done. If it raises, its entities are marked ``unavailable``
    and it is started again after a back-off (1 s, doubling, capped at ``hub.restart_backoff_max``,
    reset after a minute of good running). Returning normally ends it for good (status ``stopped``;
    it is not restarted, so returning at once cannot spin). It is cancelled at shutdown; clean up in
    ``finally`` or in ``hub_shutdown``. An exception raised while it is being cancelled is logged and
    not restarted, and a ``hub_run`` that swallows its cancellation is left behind after
    ``hub.setup_timeout`` rather than holding up the hub's stop.
    """


@hookspec
def hub_handle_command(hub: "PluginContext", entity: "EntityHandle", command: str, args: "Args") -> Any:
    """Carry out a capability command on one of this plugin's entities.

    Only the plugin that added the entity is called. ``args`` is the capability's pydantic model for
    ``command``, already validated (``switch.turn_on`` has none, ``light.turn_on`` has ``brightness``
    ...), so the plugin never parses user input. Set the new state through ``entity.set`` once the
    device confirms it. Raise ``hub.core.commands.CommandRefused`` when the request is well-formed but
    this device will not do it (out of its range, a wrong code): the caller gets a 422 with your
    message. Any other exception is a device failure (502). A returned value is passed back to the
    caller as the command's result.
    """


@hookspec
def hub_deliver_statement(hub: "PluginContext", device_id: str, signed: "Signed") -> Any:
    """Deliver a signed statement (``hub.crypto.statements.Signed``) to a device that holds its own
    key and verifies for itself (the whitepaper's light node; an ESP32 plug): a ``Command``, or a
    ``Bind``, ``Handover``, ``Grant``, ``Revoke`` it must record.

    Only for plugins whose devices hold keys (``Device.holds_key``): the identity gate calls it
    instead of ``hub_handle_command`` for them, so the hub never stands in for the device's own
    check. Return the device's answer (a command's result); raise
    ``hub.identity.errors.Refused(reason, message)`` with the device's reason (``replayed``,
    ``forged``...) when the device refuses, and any other exception when it cannot be reached.
    """


@hookspec
def hub_request_bind_proof(hub: "PluginContext", device_id: str, controller: bytes, nonce: bytes,
                           code_mac: bytes) -> "Signed":
    """Strong binding: ask a key-holding device to prove it holds its key. ``code_mac`` is
    HMAC-SHA256(setup code from the label, controller ‖ nonce): the device checks it against its
    own setup code, then returns a signed ``BindProof`` (``hub.crypto.statements``) and records the
    controller. Raise ``Refused("bad_setup_code")`` when the code does not match.
    """


@hookspec
def hub_request_receipt(hub: "PluginContext", device_id: str, call: bytes, entity: str, since: int) -> "Signed":
    """Metering a rental of a key-holding device: ask the device to sign a ``Receipt``
    (``hub.crypto.statements``) of its own meter ``entity`` (milli-units: Wh of a kWh meter) for the
    market's ``call`` (a call transaction's hash), or with ``entity`` "time" of the ms elapsed since
    ``since`` (the call's time, ms), at its own clock. The device signs only for a call it holds a
    grant for (``ref`` "call:<hex>"); raise ``Refused(reason, message)`` with its reason otherwise,
    any other exception when it cannot be reached.
    """


@hookspec
def hub_api_routes(hub: "PluginContext") -> Any:
    """Return a FastAPI ``APIRouter`` (or a list of them) served under ``/api/plugins/<name>/``.

    Routes are behind the same bearer-token authentication as the rest of the API.
    """


@hookspec
def hub_rule_triggers(hub: "PluginContext", register: "Callable[..., None]") -> None:
    """Contribute trigger types to the rule engine: ``register(type_name, schema, attach)``.

    A rule then uses ``- trigger: <type_name>`` with the other keys validated by ``schema`` (a
    pydantic model, or None to take them as a dict); errors name the rule's file and line.
    ``attach(config, fire)`` arms the trigger for one rule and returns a function that disarms it;
    call ``fire(variables)`` (a dict, available to the rule as ``trigger.*``) each time it fires.
    The MQTT plugin registers ``mqtt`` this way, the chain ``chain``.
    """


@hookspec
def hub_rule_actions(hub: "PluginContext", register: "Callable[..., None]") -> None:
    """Contribute action types to the rule engine: ``register(type_name, schema, run)``.

    An action item whose keys include ``type_name`` is validated with ``schema`` (the whole item)
    and run as ``run(config, variables)``, sync or async; what it returns is recorded in the run's
    trace, and an exception fails the run with its message (other rules are not affected).
    """


@hookspec
def hub_notify(hub: "PluginContext", notification: dict) -> Any:
    """Deliver a notification a rule sent (``action: notify.<name>`` or
    ``persistent_notification.create``, as in Home Assistant) to wherever the plugin sends them:
    a broker, a phone gateway, a mail relay.

    ``notification`` has ``service`` (``notify.phone``), ``message``, and where given ``title``,
    ``target`` and ``data``, plus ``source`` (``rule:<id>``). Every plugin implementing the hook is
    called, one after the other, each bounded by ``hub.command_timeout``; a plugin that does not
    serve ``service`` returns ``None``, one that delivered returns anything else (recorded in the
    rule's trace). An exception fails the rule's step with the plugin's name and message (the
    other plugins are still called), unless the step has ``continue_on_error``.
    """


@hookspec
def hub_register_commands(cli: "click.Group") -> None:
    """Add subcommands to the ``hub`` command line (datasette's ``register_commands``): a Modbus
    driver adds ``hub modbus scan``. ``cli`` is the top-level click group; add a group named after
    the plugin. Called when the ``hub`` command starts, before any hub runs, so it gets no ``hub``.
    """


@hookspec
def hub_shutdown(hub: "PluginContext") -> Any:
    """Release what set-up took: close ports and connections. Called once, on stop."""

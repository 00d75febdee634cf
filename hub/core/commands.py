"""The command registry: the one gate every command passes on its way to a driver.

Whoever sends a command (the API, a rule, MQTT, a renter through the market), it is validated here
against the capability's pydantic model, so a driver only ever sees well-formed arguments and every
caller gets the same error for the same mistake. Errors carry an HTTP-like status and a machine code
so the API and the CLI can report them without guessing.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable
from typing import Any

from pydantic import ValidationError

from hub.core.bus import EventBus
from hub.core.events import CommandCalled
from hub.core.redact import redact, scrub, secret_fields, secret_values
from hub.core.registry import EntityEntry, EntityRegistry
from hub.core.state import StateMachine
from hub.core.supervisor import is_hub_cancellation
from hub.devices.capabilities import Args, CommandSpec, get_capability

Handler = Callable[[EntityEntry, str, Args], Any]  # a result, or an awaitable of one


class CommandError(Exception):
    status = 400
    code = "command_error"

    def __init__(self, message: str, *, errors: list[dict] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.errors = errors or []

    def as_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {"error": self.code, "message": self.message}
        if self.errors:
            body["errors"] = self.errors
        return body


class UnknownEntity(CommandError):
    status, code = 404, "unknown_entity"


class UnknownCommand(CommandError):
    status, code = 404, "unknown_command"


class InvalidArguments(CommandError):
    status, code = 422, "invalid_arguments"


class CommandRefused(CommandError):
    """Raised by a plugin when the command is well-formed but this device will not do it (a target
    temperature outside its range, a wrong lock code): the caller's mistake, so a 4xx, not a 502."""

    status, code = 422, "command_refused"


class EntityUnavailable(CommandError):
    status, code = 409, "entity_unavailable"


class CommandFailed(CommandError):
    status, code = 502, "command_failed"


class CommandTimeout(CommandError):
    status, code = 504, "command_timeout"


def validation_errors(exc: ValidationError) -> list[dict]:
    """Field and message only: the input is left out, since a rejected value may be a secret."""
    return [
        {"field": ".".join(str(p) for p in err["loc"]) or None, "message": err["msg"]}
        for err in exc.errors(include_url=False, include_input=False)
    ]


def _describe(exc: BaseException) -> str:
    """A driver's own message when it gave one; the exception's type when that alone says what
    happened (``SystemExit: 3``, a bare ``KeyboardInterrupt``)."""
    if isinstance(exc, Exception) and str(exc):
        return str(exc)
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


class CommandRegistry:
    def __init__(
        self,
        entities: EntityRegistry,
        states: StateMachine,
        bus: EventBus,
        now: Callable[[], float],
        timeout: float = 10.0,
    ) -> None:
        self._entities = entities
        self._states = states
        self._bus = bus
        self._now = now
        self.timeout = timeout
        self.outcomes = {"ok": 0, "failed": 0}  # commands since start (GET /api/metrics)
        self._handlers: dict[str, Handler] = {}
        #: The identity gate (hub.identity.gate), once its plugin runs: it routes a command for a
        #: device that holds its own key to the device, signed, instead of to the driver's handler.
        self.gate: Any = None

    def set_handler(self, platform: str, handler: Handler) -> None:
        self._handlers[platform] = handler

    def remove_handler(self, platform: str) -> None:
        self._handlers.pop(platform, None)

    def validate(self, entity_id: str, command: str, args: dict | None) -> tuple[EntityEntry, CommandSpec, Args]:
        """Everything that can be checked without the device: the rule engine calls this when it
        loads a rule, so a bad rule is refused at load time rather than at 3 a.m."""
        entry = self._entities.get(entity_id)
        if entry is None:
            raise UnknownEntity(f"unknown entity {entity_id!r}")
        capability = get_capability(entry.capability)
        spec = capability.command(command)
        if spec is None:
            valid = ", ".join(sorted(capability.commands)) or "none"
            raise UnknownCommand(
                f"{entity_id} ({entry.capability}) has no command {command!r}; valid: {valid}"
            )
        if args is not None and not isinstance(args, dict):
            raise InvalidArguments("arguments must be an object of name: value", errors=[{"field": None, "message": "not an object"}])
        try:
            model = spec.args_for(entry.options).model_validate(args or {})
        except ValidationError as exc:
            errors = validation_errors(exc)
            detail = "; ".join(f"{e['field']}: {e['message']}" if e["field"] else e["message"] for e in errors)
            raise InvalidArguments(f"invalid arguments for {entry.capability}.{command}: {detail}", errors=errors) from None
        return entry, spec, model

    async def call(self, entity_id: str, command: str, args: dict | None = None, *, source: str = "api",
                   signed: Any = None) -> Any:
        """``source`` names the caller for the command log (``api:<token>``, ``rule:<id>``,
        ``signed:<signer>``, ``chain:<tx>``); ``signed`` is the signed command the gate verified
        (or will deliver to a device that verifies for itself), None for a local caller."""
        secret: frozenset[str] = frozenset()
        try:
            secret = self._secret_fields(entity_id, command)
            entry, spec, model = self.validate(entity_id, command, args)
            state = self._states.get(entity_id)
            if state is not None and not state.available:
                raise EntityUnavailable(f"{entity_id} is unavailable: its driver has lost the device")
            handler = self._handlers.get(entry.platform)
            if handler is None:
                raise EntityUnavailable(f"{entity_id} is unavailable: plugin {entry.platform!r} is not running")
            sent = command
            if spec.via is not None and spec.derive is not None:
                # select_next and the like: the hub works out the base command from the current
                # state, so every driver gets them by implementing select_option alone.
                model = spec.derive(entry.options, state.value if state is not None else None, model)
                sent = spec.via
            if self.gate is not None:
                handler = self.gate.route(entry, handler, signed)
            try:
                result = handler(entry, sent, model)
                if inspect.isawaitable(result):
                    # Only what can wait needs a deadline: a synchronous handler has finished by
                    # now. asyncio.timeout, not wait_for, which wraps the call in a task of its own.
                    async with asyncio.timeout(self.timeout):
                        result = await result
            except TimeoutError:
                raise CommandTimeout(
                    f"{entry.platform} did not answer {entity_id} {command} within {self.timeout:g} s"
                ) from None
            except CommandError:
                raise
            except BaseException as exc:  # noqa: BLE001 - sys.exit() in a driver is a failed command, not a stopped hub
                if is_hub_cancellation(exc):
                    raise
                raise CommandFailed(f"{entry.platform} failed on {entity_id} {command}: {_describe(exc)}") from exc
        except CommandError as exc:
            self.outcomes["failed"] += 1
            error = scrub(exc.message, secret_values(args, secret))
            self._bus.publish(CommandCalled(self._now(), entity_id, command, redact(args or {}, secret), source, False, error))
            raise
        self.outcomes["ok"] += 1
        self._bus.publish(CommandCalled(self._now(), entity_id, command, redact(model.model_dump(exclude_none=True), secret), source, True))
        return result

    def _secret_fields(self, entity_id: str, command: str) -> frozenset[str]:
        """The arguments the command's model marks secret, known even when validation then fails;
        for an unknown entity or command, none (redact() still goes by the names)."""
        entry = self._entities.get(entity_id)
        if entry is None:
            return frozenset()
        try:
            spec = get_capability(entry.capability).command(command)
        except KeyError:
            return frozenset()
        return secret_fields(spec.args if spec is not None else None)

"""From a rule's YAML (or JSON from the API) to a compiled rule, or to the reasons it is refused.

Everything that can be checked before the rule runs is checked here, against the live hub: entity
ids exist, a ``call`` fits the entity's capability and its arguments validate against the command's
model, expressions compile and name only known entities. A refused rule is not loaded; each reason
names the file, line and key.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any, Protocol

from pydantic import BaseModel, ValidationError

from hub.config import ConfigIssue
from hub.core.commands import CommandError
from hub.devices.capabilities import CAPABILITIES
from hub.rules import actions as A
from hub.rules.conditions import SIMPLE, Condition, ExpressionCheck, Logic, parse_clock
from hub.rules.context import RuleContext
from hub.rules.expressions import ExpressionError
from hub.rules.templates import compile_condition, compile_template, compile_value
from hub.rules import ha_services
from hub.rules.model import (
    BUILTIN_ACTIONS,
    BUILTIN_CONDITIONS,
    BUILTIN_TRIGGERS,
    COMMON_KEYS,
    MAX_TEXT,
    NumericStateCondition,
    NumericStateTrigger,
    ServiceAction,
    AvailabilityTrigger,
    CallAction,
    ChooseAction,
    DelayAction,
    EventAction,
    EventTrigger,
    LogAction,
    RepeatAction,
    RuleHead,
    StopAction,
    SunTrigger,
    TemplateTrigger,
    TimeCondition,
    TimePatternTrigger,
    TimeTrigger,
    WaitFor,
    WaitForAction,
    entity_list,
    is_template,
)
from hub.rules.triggers import _pattern

Path = tuple

#: Values (mapping keys, items, scalars) one rule may hold, counting a YAML alias once per use: a
#: few aliases nested can stand for billions of values, which hashing the rule would then expand.
MAX_RULE_VALUES = 20_000
MAX_DEPTH = 32


class Reporter(Protocol):
    def issue(self, path: Path, message: str) -> None: ...
    def report(self, base: Path, err: ValidationError, value: Any) -> None: ...


class PlainReporter:
    """For rules that come from the API: keys but no lines."""

    def __init__(self, origin: str | None = None) -> None:
        self.origin = origin
        self.issues: list[ConfigIssue] = []

    def issue(self, path: Path, message: str) -> None:
        from hub.config import _dotted

        self.issues.append(ConfigIssue(self.origin, None, None, _dotted(path) or None, message))

    def report(self, base: Path, err: ValidationError, value: Any) -> None:
        for error in err.errors(include_url=False):
            self.issue(base + tuple(p for p in error["loc"]), error["msg"])


@dataclass
class Rule:
    id: str
    alias: str | None
    description: str | None
    mode: str
    max: int
    enabled: bool
    triggers: list[tuple[str, Any]]  # (type, validated config)
    conditions: list[Condition]
    actions: list[A.Step]
    raw: dict
    source: str | None = None  # "automations.yaml:12"
    file: str | None = None
    digest: str = ""
    this: dict = field(default_factory=dict)
    variables: "A.SetVariables | None" = None  # rendered before the conditions, as in HA
    #: Per trigger (same order as ``triggers``): the rule's ``trigger_variables`` and the trigger's
    #: own ``variables``, rendered when that trigger fires, before ``variables``.
    trigger_variables: list = field(default_factory=list)


class Invalid(Exception):
    """The item was reported; the rule will not load."""


class RuleParser:
    def __init__(self, ctx: RuleContext, reporter: Reporter, base: Path) -> None:
        self.ctx = ctx
        self.reporter = reporter
        self.base = base
        self.failed = False

    # --- helpers ---------------------------------------------------------------------------------
    def fail(self, path: Path, message: str) -> None:
        self.failed = True
        self.reporter.issue(self.base + path, message)

    def model(self, path: Path, schema: type[BaseModel], value: Any) -> Any:
        try:
            return schema.model_validate(value)
        except ValidationError as err:
            self.failed = True
            self.reporter.report(self.base + path, err, value)
            raise Invalid from None

    def items(self, path: Path, value: Any, what: str) -> list[tuple[Path, Any]]:
        if value is None:
            return []
        if isinstance(value, (dict, str)):
            value = [value]
        if not isinstance(value, list):
            self.fail(path, f"{what} must be a list")
            return []
        return [(path + (i,), item) for i, item in enumerate(value)]

    def common(self, path: Path, raw: dict) -> dict | None:
        """The item without ``alias`` and ``enabled``; None when it says ``enabled: false`` (kept in
        the file, left out of the rule, as in Home Assistant)."""
        enabled = raw.get("enabled", True)
        if not isinstance(enabled, bool):
            self.fail(path + ("enabled",), "enabled must be true or false")
            raise Invalid
        alias = raw.get("alias")
        if alias is not None and (not isinstance(alias, str) or len(alias) > MAX_TEXT):
            self.fail(path + ("alias",), "alias must be a line of text")
            raise Invalid
        return {k: v for k, v in raw.items() if k not in COMMON_KEYS} if enabled else None

    def entities(self, path: Path, ids: list[str]) -> None:
        for entity_id in ids:
            if entity_id not in self.ctx.hub.entities:
                self.fail(path, f"unknown entity {entity_id!r}")

    def value(self, path: Path, raw: Any):
        try:
            render = compile_value(raw, self.ctx.functions)
        except ExpressionError as exc:
            self.fail(path, str(exc))
            raise Invalid from None
        self._expression_entities(path, raw)
        return render

    def _expression_entities(self, path: Path, raw: Any) -> None:
        if isinstance(raw, str) and is_template(raw):
            self.entities(path, sorted(compile_template(raw, self.ctx.functions).entity_ids))
        elif isinstance(raw, dict):
            for k, v in raw.items():
                self._expression_entities(path + (k,), v)
        elif isinstance(raw, list):
            for i, v in enumerate(raw):
                self._expression_entities(path + (i,), v)

    # --- the rule --------------------------------------------------------------------------------
    def rule(self, raw: Any, *, source: str | None = None, file: str | None = None) -> Rule | None:
        if not isinstance(raw, dict):
            self.fail((), "a rule is a mapping with id, trigger and action")
            return None
        if not self.bounded(raw):
            return None
        try:
            head = self.model((), RuleHead, raw)
        except Invalid:
            return None
        trigger_key = "triggers" if "triggers" in raw else "trigger"
        condition_key = "conditions" if "conditions" in raw else "condition"
        action_key = "actions" if "actions" in raw else "action"
        trigger_items = self.items((trigger_key,), head.trigger, "trigger")
        trigger_variables: list = []  # one per trigger kept: its own variables or None
        triggers = []
        for p, v in trigger_items:
            before = len(trigger_variables)
            found = self.trigger(p, v, trigger_variables)
            if found is not None:
                triggers.append(found)
                if len(trigger_variables) == before:
                    trigger_variables.append(None)
        if not trigger_items and not self.failed:
            self.fail((trigger_key,), "a rule needs at least one trigger")
        variables = self._variables_step(("variables",), ("variables",), head.variables) if head.variables else None
        if head.trigger_variables:  # HA renders these before the trigger's own and the rule's
            trigger_variables = [self._merge_variables(
                self._variables_step(("trigger_variables",), ("trigger_variables",), head.trigger_variables), own)
                for own in trigger_variables]
        conditions = self.conditions((condition_key,), head.condition)
        steps = self.sequence((action_key,), (), head.action)
        if not self.items((action_key,), head.action, "action") and not self.failed:
            self.fail((action_key,), "a rule needs at least one action")
        if self.failed:
            return None
        digest = hashlib.sha256(json.dumps(raw, sort_keys=True, default=str).encode()).hexdigest()[:16]
        return Rule(
            id=head.id, alias=head.alias, description=head.description, mode=head.mode, max=head.max,
            enabled=head.enabled if head.initial_state is None else head.initial_state,
            triggers=triggers, conditions=conditions, actions=steps, raw=raw,
            source=source, file=file, digest=digest, this={"id": head.id, "alias": head.alias},
            variables=variables, trigger_variables=trigger_variables,
        )

    def bounded(self, raw: Any) -> bool:
        """Refuse a rule too big to keep before anything walks it recursively: every string (a key
        or a value anywhere, ``args`` included) at most ``MAX_TEXT`` characters, and the whole rule
        at most ``MAX_RULE_VALUES`` values nested at most ``MAX_DEPTH`` deep."""
        stack: list[tuple[Path, Any]] = [((), raw)]
        seen = 0
        ok = True
        while stack:
            path, value = stack.pop()
            seen += 1
            if seen > MAX_RULE_VALUES:
                self.fail((), f"the rule is too large: more than {MAX_RULE_VALUES} values "
                              f"(a YAML alias counts each time it is used)")
                return False
            if len(path) > MAX_DEPTH:
                self.fail(path, f"nested more than {MAX_DEPTH} levels deep")
                return False
            if isinstance(value, str):
                if len(value) > MAX_TEXT:
                    self.fail(path, f"String should have at most {MAX_TEXT} characters (it has {len(value)})")
                    ok = False
            elif isinstance(value, dict):
                for key, item in value.items():
                    if isinstance(key, str) and len(key) > MAX_TEXT:
                        self.fail(path, f"a key should have at most {MAX_TEXT} characters (one has {len(key)})")
                        ok = False
                        continue
                    stack.append((path + (key,), item))
            elif isinstance(value, (list, tuple)):
                stack.extend((path + (i,), item) for i, item in enumerate(value))
        return ok

    # --- triggers --------------------------------------------------------------------------------
    def trigger(self, path: Path, raw: Any, variables: list | None = None) -> tuple[str, Any] | None:
        """One trigger. ``variables``: a rule's triggers may carry HA's ``variables:`` (rendered when
        that trigger fires); the compiled step (or None) is appended to it, one per trigger kept."""
        if not isinstance(raw, dict):
            self.fail(path, "a trigger is a mapping like {trigger: state, entity_id: ...}")
            return None
        try:
            raw = self.common(path, raw)
        except Invalid:
            return None
        if raw is None:
            return None
        if "variables" in raw:
            if variables is None:
                self.fail(path + ("variables",), "variables on a trigger work on a rule's own triggers, "
                                                 "not on those a step waits for")
                return None
            if not isinstance(raw["variables"], dict):
                self.fail(path + ("variables",), "variables is a mapping of names to values or templates")
                return None
            step = self._variables_step(path + ("variables",), ("trigger_variables",), raw["variables"])
            raw = {k: v for k, v in raw.items() if k != "variables"}
            found = self.trigger(path, raw, [])
            if found is not None:
                variables.append(step)
            return found
        kind = raw.get("trigger", raw.get("platform"))
        plugin = self.ctx.hub.rule_triggers.get(kind) if isinstance(kind, str) else None
        if kind not in BUILTIN_TRIGGERS and plugin is None:
            known = sorted([*BUILTIN_TRIGGERS, *self.ctx.hub.rule_triggers])
            self.fail(path, f"unknown trigger type {kind!r}; known: {', '.join(known)}")
            return None
        try:
            if plugin is not None:
                data = {k: v for k, v in raw.items() if k not in ("trigger", "platform", "id")}
                config = self.model(path, plugin[1], data) if plugin[1] is not None else data
                return kind, (raw.get("id"), config)
            cfg = self.model(path, BUILTIN_TRIGGERS[kind], raw)
        except Invalid:
            return None
        if hasattr(cfg, "entity_id") and cfg.entity_id is not None:
            self.entities(path + ("entity_id",), entity_list(cfg.entity_id))
        if isinstance(cfg, AvailabilityTrigger) and cfg.device_id and self.ctx.hub.devices.get(cfg.device_id) is None:
            self.fail(path + ("device_id",), f"unknown device {cfg.device_id!r}")
        if isinstance(cfg, TimeTrigger):
            for i, at in enumerate(cfg.at if isinstance(cfg.at, list) else [cfg.at]):
                if "." in at:
                    self.entities(path + ("at",), [at])
                else:
                    try:
                        parse_clock(at)
                    except ValueError as exc:
                        self.fail(path + ("at",), str(exc))
        if isinstance(cfg, TimePatternTrigger):
            for unit, limit in (("hours", 24), ("minutes", 60), ("seconds", 60)):
                try:
                    _pattern(getattr(cfg, unit), limit, True)
                except ValueError as exc:
                    self.fail(path + (unit,), str(exc))
        if isinstance(cfg, SunTrigger) and (self.ctx.hub.core.latitude is None or self.ctx.hub.core.longitude is None):
            self.fail(path, "sun triggers need hub.latitude and hub.longitude in configuration.yaml")
        if isinstance(cfg, NumericStateTrigger):
            self._numeric(path, cfg)
        if isinstance(cfg, TemplateTrigger):
            try:
                compile_condition(cfg.value_template, self.ctx.functions)
            except ExpressionError as exc:
                self.fail(path + ("value_template",), str(exc))
        if isinstance(cfg, EventTrigger) and not cfg.event_type:
            self.fail(path + ("event_type",), "event_type must not be empty")
        return kind, cfg

    # --- conditions ------------------------------------------------------------------------------
    def conditions(self, path: Path, raw: Any) -> list[Condition]:
        result = []
        for item_path, item in self.items(path, raw, "condition"):
            cond = self.condition(item_path, item)
            if cond is not None:
                result.append(cond)
        return result

    def condition(self, path: Path, raw: Any) -> Condition | None:
        text_path = "condition/" + "/".join(str(p) for p in path[1:]) if len(path) > 1 else "condition"
        if isinstance(raw, str):  # shorthand: an expression, with or without {{ }}
            text = raw.strip()
            if text.startswith("{{") and text.endswith("}}"):
                text = text[2:-2]
            return self._expression(path, text_path, text)
        logic = [k for k in ("and", "or", "not") if isinstance(raw, dict) and k in raw and "condition" not in raw]
        if len(logic) == 1 and set(raw) <= {logic[0], *COMMON_KEYS}:  # HA's shorthand: "- or: [...]"
            raw = {**{k: v for k, v in raw.items() if k != logic[0]}, "condition": logic[0], "conditions": raw[logic[0]]}
        if not isinstance(raw, dict) or "condition" not in raw:
            self.fail(path, "a condition is a mapping like {condition: state, ...} or an expression string")
            return None
        try:
            raw = self.common(path, raw)
        except Invalid:
            return None
        if raw is None:
            return None
        kind = raw["condition"]
        if kind not in BUILTIN_CONDITIONS:
            self.fail(path + ("condition",), f"unknown condition {kind!r}; known: {', '.join(sorted(BUILTIN_CONDITIONS))}")
            return None
        try:
            cfg = self.model(path, BUILTIN_CONDITIONS[kind], raw)
        except Invalid:
            return None
        if kind in ("and", "or", "not"):
            return Logic(text_path, kind, self.conditions(path + ("conditions",), cfg.conditions))
        if kind in ("expression", "template"):
            return self._expression(path + ("expression",), text_path, cfg.expression)
        if hasattr(cfg, "entity_id"):
            self.entities(path + ("entity_id",), entity_list(cfg.entity_id))
        if isinstance(cfg, NumericStateCondition):
            self._numeric(path, cfg)
            if self.failed:
                return None
        if isinstance(cfg, TimeCondition):
            for key in ("after", "before"):
                if getattr(cfg, key):
                    try:
                        parse_clock(getattr(cfg, key))
                    except ValueError as exc:
                        self.fail(path + (key,), str(exc))
                        return None
        try:
            return SIMPLE[type(cfg)](text_path, cfg, self.ctx)
        except ValueError as exc:
            self.fail(path, str(exc))
            return None

    def _numeric(self, path: Path, cfg: Any) -> None:
        """``numeric_state``: its bounds, and the entities that are bounds, and its value_template."""
        for key in ("above", "below"):
            if isinstance(getattr(cfg, key), str):
                self.entities(path + (key,), [getattr(cfg, key)])
        if cfg.value_template is not None:
            if cfg.attribute is not None:
                self.fail(path + ("value_template",), "give 'attribute' or 'value_template', not both")
            try:
                compile_template(cfg.value_template, self.ctx.functions)
            except ExpressionError as exc:
                self.fail(path + ("value_template",), str(exc))

    def _expression(self, path: Path, text_path: str, text: str) -> Condition | None:
        try:
            check = ExpressionCheck(text_path, text, self.ctx)
        except ExpressionError as exc:
            self.fail(path, str(exc))
            return None
        self.entities(path, sorted(check.expression.entity_ids))
        return check

    # --- actions ---------------------------------------------------------------------------------
    def sequence(self, path: Path, pos: tuple, raw: Any) -> list[A.Step]:
        steps = []
        for i, (item_path, item) in enumerate(self.items(path, raw, "action")):
            try:
                step = self.action(item_path, pos + (i,), item)
            except Invalid:
                continue
            if step is not None:
                steps.append(step)
        return steps

    def action(self, path: Path, pos: tuple, raw: Any) -> A.Step | None:
        if not isinstance(raw, dict):
            self.fail(path, "an action is a mapping like {action: light.turn_on, target: ...}")
            return None
        raw = self.common(path, raw)
        if raw is None:
            return None
        continue_on_error = raw.get("continue_on_error", False)
        if "call" not in raw and "action" not in raw and "service" not in raw and "continue_on_error" in raw:
            if not isinstance(continue_on_error, bool):
                self.fail(path + ("continue_on_error",), "continue_on_error must be true or false")
                return None
            raw = {k: v for k, v in raw.items() if k != "continue_on_error"}
            step = self.action(path, pos, raw)
            if step is not None:
                step.continue_on_error = continue_on_error
            return step
        if "action" in raw or "service" in raw:
            return self._service(path, pos, self.model(path, ServiceAction, raw), raw)
        if "if" in raw:
            return self._if(path, pos, raw)
        if "wait_for_trigger" in raw:
            return self._wait_for_trigger(path, pos, raw)
        if "wait_template" in raw:
            return self._wait_template(path, pos, raw)
        if "parallel" in raw:
            return self._parallel(path, pos, raw)
        if "sequence" in raw:  # HA's group of steps: a choose whose one option always holds
            self._only(path, raw, ("sequence",))
            return A.Choose(pos, [([], self.sequence(path + ("sequence",), pos + ("choose", 0), raw["sequence"]))], [])
        if any(k in raw for k in ("and", "or", "not")) and "condition" not in raw:
            cond = self.condition(path, raw)
            return A.CheckCondition(pos, cond) if cond is not None else None
        if "condition" in raw:
            cond = self.condition(path, raw)
            return A.CheckCondition(pos, cond) if cond is not None else None
        kind = next((k for k in BUILTIN_ACTIONS if k in raw), None)
        plugin_kind = next((k for k in self.ctx.hub.rule_actions if k in raw), None) if kind is None else None
        if kind is None and plugin_kind is None:
            known = sorted([*BUILTIN_ACTIONS, "condition", *self.ctx.hub.rule_actions])
            self.fail(path, f"unknown action: expected one of the keys {', '.join(known)}")
            return None
        if plugin_kind is not None:
            plugin, schema, runner = self.ctx.hub.rule_actions[plugin_kind]
            config = self.model(path, schema, raw) if schema is not None else raw
            return A.PluginAction(pos, plugin_kind, plugin, config, runner)
        cfg = self.model(path, BUILTIN_ACTIONS[kind], raw)
        return getattr(self, f"_{kind}")(path, pos, cfg, raw)

    def _call(self, path: Path, pos: tuple, cfg: CallAction, raw: dict) -> A.Step | None:
        capability, command = cfg.call.split(".")
        if capability not in CAPABILITIES:
            self.fail(path + ("call",), f"unknown capability {capability!r}; known: {', '.join(sorted(CAPABILITIES))}")
            return None
        if command not in CAPABILITIES[capability].commands:
            valid = ", ".join(sorted(CAPABILITIES[capability].commands)) or "none"
            self.fail(path + ("call",), f"{capability} has no command {command!r}; valid: {valid}")
            return None
        ids = entity_list(cfg.entity_id)
        for entity_id in ids:
            entry = self.ctx.hub.entities.get(entity_id)
            if entry is None:
                self.fail(path + ("entity_id",), f"unknown entity {entity_id!r}")
            elif entry.capability != capability:
                self.fail(path + ("entity_id",), f"{entity_id} is a {entry.capability}, not a {capability}")
        args_key = "data" if "data" in raw else "args"  # name the key the user wrote
        if not self.failed and ids and not any(is_template(v) for v in cfg.args.values()):
            try:
                self.ctx.hub.commands.validate(ids[0], command, cfg.args)
            except CommandError as exc:
                for err in exc.errors or [{"field": None, "message": exc.message}]:
                    self.fail(path + (args_key,) + ((err["field"],) if err["field"] else ()), err["message"])
        elif ids:
            model_fields = CAPABILITIES[capability].commands[command].args.model_fields
            for key in cfg.args:
                if key not in model_fields:
                    self.fail(path + (args_key, key), f"{cfg.call} has no argument {key!r}")
        render = self.value(path + (args_key,), cfg.args)
        return A.Call(pos, ids, command, render, cfg.continue_on_error)

    def _delay(self, path: Path, pos: tuple, cfg: DelayAction, raw: dict) -> A.Step:
        if isinstance(cfg.delay, (str, dict)):  # templated (the model turned the rest into seconds)
            return A.Delay(pos, None, self.value(path + ("delay",), cfg.delay))
        return A.Delay(pos, cfg.delay, None)

    def _wait_for(self, path: Path, pos: tuple, cfg: WaitForAction, raw: dict) -> A.Step:
        triggers = [t for t in (self.trigger(p, v) for p, v in self.items(path + ("wait_for", "trigger"), cfg.wait_for.trigger, "trigger")) if t]
        return A.WaitFor(pos, triggers, cfg.wait_for.timeout, cfg.wait_for.continue_on_timeout)

    def _choose(self, path: Path, pos: tuple, cfg: ChooseAction, raw: dict) -> A.Step:
        options = []
        for i, option in enumerate(cfg.choose):
            option_path = path + ("choose", i)
            key = "conditions" if "conditions" in raw["choose"][i] else "condition"
            conds = self.conditions(option_path + (key,), option.conditions)
            steps = self.sequence(option_path + ("sequence",), pos + ("choose", i), option.sequence)
            options.append((conds, steps))
        default = self.sequence(path + ("default",), pos + ("choose", -1), cfg.default)
        return A.Choose(pos, options, default)

    def _repeat(self, path: Path, pos: tuple, cfg: RepeatAction, raw: dict) -> A.Step:
        r = cfg.repeat
        count = for_each = None
        if r.count is not None:
            count = self.value(path + ("repeat", "count"), r.count)
        if r.for_each is not None:
            for_each = self.value(path + ("repeat", "for_each"), r.for_each)
        while_ = self.conditions(path + ("repeat", "while"), r.while_) if r.while_ is not None else None
        until = self.conditions(path + ("repeat", "until"), r.until) if r.until is not None else None
        steps = self.sequence(path + ("repeat", "sequence"), pos + ("repeat",), r.sequence)
        return A.Repeat(pos, count, while_, until, steps, r.max_iterations, for_each)

    def _stop(self, path: Path, pos: tuple, cfg: StopAction, raw: dict) -> A.Step:
        return A.Stop(pos, cfg.stop, cfg.error, cfg.response_variable)

    def _event(self, path: Path, pos: tuple, cfg: EventAction, raw: dict) -> A.Step:
        return A.FireEvent(pos, cfg.event, self.value(path + ("event_data",), cfg.event_data))

    def _variables(self, path: Path, pos: tuple, cfg: Any, raw: dict) -> A.Step:
        return self._variables_step(path + ("variables",), pos, cfg.variables)

    def _variables_step(self, path: Path, pos: tuple, variables: dict) -> A.SetVariables:
        rendered = []
        for name, value in variables.items():
            if not isinstance(name, str) or not name.isidentifier() or name in ("trigger", "this", "wait", "repeat"):
                self.fail(path + (name,), f"{name!r} cannot be a variable name: use letters, digits and _, "
                                          f"not trigger, this, wait or repeat")
                continue
            try:
                rendered.append((name, self.value(path + (name,), value)))
            except Invalid:
                continue
        return A.SetVariables(pos, rendered)

    @staticmethod
    def _merge_variables(first: A.SetVariables, then: A.SetVariables | None) -> A.SetVariables:
        return first if then is None else A.SetVariables(first.pos, [*first.variables, *then.variables])

    def _log(self, path: Path, pos: tuple, cfg: LogAction, raw: dict) -> A.Step:
        return A.Log(pos, self.value(path + ("log",), cfg.log), cfg.level)

    def _service(self, path: Path, pos: tuple, cfg: ServiceAction, raw: dict) -> A.Step | None:
        key = "action" if cfg.action is not None else "service"
        name = cfg.action or cfg.service or ""
        if name.startswith("notify.") or name == "persistent_notification.create":
            return self._notify(path, pos, name, cfg)
        if name.startswith("scene."):
            from hub.rules import scenes

            return scenes.service_step(self, path, pos, name, cfg)
        if name.startswith("script."):
            from hub.rules import script_calls

            return script_calls.parse_step(self, path, pos, name, cfg, key)
        if cfg.response_variable is not None:
            self.fail(path + ("response_variable",), f"{name} gives no response: only a script call (script.x) does")
            return None
        if name in self.ctx.hub.rule_actions:
            return self._plugin_service(path, pos, name, cfg)
        service = ha_services.lookup(name)
        if isinstance(service, str):
            self.fail(path + (key,), service)
            return None
        data = dict(cfg.data)
        targets, templated = self._targets(path, name, service, cfg, data)
        if self.failed or not (targets or templated):
            return None
        for k in data:
            if k not in service.keys:
                self.fail(path + ("data", k), f"{name} has no data {k!r}; it takes {', '.join(service.keys) or 'no data'}")
        if self.failed:
            return None
        if not any(is_template(v) or isinstance(v, (dict, list)) and is_template(json.dumps(v)) for v in data.values()):
            checked = set()
            for entity_id, command in targets:
                try:
                    commands = service.translate(command, data)
                except ha_services.ServiceDataError as exc:
                    self.fail(path + ("data",) + ((exc.field,) if exc.field else ()), exc.message)
                    return None
                for cmd, args in commands:
                    if (entity_id, cmd) in checked:
                        continue
                    checked.add((entity_id, cmd))
                    try:
                        self.ctx.hub.commands.validate(entity_id, cmd, args)
                    except CommandError as exc:
                        for err in exc.errors or [{"field": None, "message": exc.message}]:
                            self.fail(path + ("data",) + ((err["field"],) if err["field"] else ()),
                                      f"{err['message']} ({name} on {entity_id})")
        if self.failed:
            return None
        render = self.value(path + ("data",), data)
        step = A.ServiceCall(pos, name, targets, service.translate, render, cfg.continue_on_error)
        step.templated = [(t, service) for t in templated]
        return step

    def _targets(self, path: Path, name: str, service: ha_services.Service, cfg: ServiceAction,
                 data: dict) -> tuple[list[tuple[str, str]], list]:
        """(entity id, hub command) for each entity the step names: ``target.entity_id``, the
        ``entity_id`` shorthand (on the step or, in old automations, in ``data``), and each entity of
        a ``target.device_id`` that the service applies to (as HA picks a device's entities).
        Templated entity ids (``light.{{ repeat.item }}``) come second, as renderers: the run
        checks what they name."""
        for refused in ("area_id", "floor_id", "label_id"):
            if refused in cfg.target:
                self.fail(path + ("target", refused), f"the hub has no {refused[:-3]}s yet: name entity_id or device_id")
        unknown = set(cfg.target) - {"entity_id", "device_id", "area_id", "floor_id", "label_id"}
        for k in sorted(unknown):
            self.fail(path + ("target", k), f"a target takes entity_id, device_id; not {k!r}")
        named: list[tuple[Path, str]] = []
        templated: list = []
        for where, value in ((("target", "entity_id"), cfg.target.get("entity_id")), (("entity_id",), cfg.entity_id),
                             (("data", "entity_id"), data.pop("entity_id", None))):
            if value is None:
                continue
            if not isinstance(value, (str, list)) or not all(isinstance(v, str) for v in entity_list(value)):
                self.fail(path + where, "entity_id is an entity id or a list of them")
                continue
            # HA also takes "light.a, light.b" as a list
            for entity_id in [e for v in entity_list(value) for e in (v.split(",") if not is_template(v) else [v])]:
                if is_template(entity_id):
                    templated.append(self.value(path + where, entity_id.strip()))
                else:
                    named.append((path + where, entity_id.strip()))
        targets: list[tuple[str, str]] = []

        def add(where: Path, entity_id: str, from_device: bool) -> None:
            entry = self.ctx.hub.entities.get(entity_id)
            if entry is None:
                self.fail(where, f"unknown entity {entity_id!r}")
                return
            command = service.command_for(entry.capability)
            if command is None:
                if not from_device:
                    self.fail(where, f"{entity_id} is a {entry.capability}: {name} does not apply to it")
                return
            if (entity_id, command) not in targets:
                targets.append((entity_id, command))

        for where, entity_id in named:
            add(where, entity_id, False)
        devices = cfg.target.get("device_id")
        for device_id in entity_list(devices) if devices is not None else []:
            where = path + ("target", "device_id")
            if not isinstance(device_id, str) or self.ctx.hub.devices.get(device_id) is None:
                self.fail(where, f"unknown device {device_id!r}")
                continue
            before = len(targets)
            for entry in self.ctx.hub.entities.for_device(device_id):
                add(where, entry.entity_id, True)
            if len(targets) == before:
                self.fail(where, f"device {device_id!r} has no entity that {name} applies to")
        if not targets and not templated and not self.failed:
            self.fail(path, f"{name} needs a target: target.entity_id, target.device_id or entity_id")
        return targets, templated

    def _notify(self, path: Path, pos: tuple, name: str, cfg: ServiceAction) -> A.Step | None:
        keys = ha_services.PERSISTENT_KEYS if name.startswith("persistent_notification.") else ha_services.NOTIFY_KEYS
        for k in cfg.data:
            if k not in keys:
                self.fail(path + ("data", k), f"{name} has no data {k!r}; it takes {', '.join(keys)}")
        if "message" not in cfg.data:
            self.fail(path + ("data",), f"{name} needs data.message")
        if self.failed:
            return None
        return A.Notify(pos, name, self.value(path + ("data",), cfg.data), cfg.continue_on_error)

    def _only(self, path: Path, raw: dict, keys: tuple[str, ...]) -> None:
        unexpected = [k for k in raw if k not in keys]
        for k in unexpected:
            self.fail(path + (k,), f"unexpected key {k!r}; this step takes {', '.join(keys)}")
        if unexpected:
            raise Invalid

    def _if(self, path: Path, pos: tuple, raw: dict) -> A.Step:
        """HA's ``if``/``then``/``else``: a ``choose`` with one option, so a run paused inside it
        resumes the same way."""
        self._only(path, raw, ("if", "then", "else"))
        if "then" not in raw:
            self.fail(path, "an 'if' step needs 'then'")
            raise Invalid
        conds = self.conditions(path + ("if",), raw["if"])
        then = self.sequence(path + ("then",), pos + ("choose", 0), raw["then"])
        otherwise = self.sequence(path + ("else",), pos + ("choose", -1), raw.get("else"))
        return A.Choose(pos, [(conds, then)], otherwise)

    def _wait_for_trigger(self, path: Path, pos: tuple, raw: dict) -> A.Step:
        """HA's ``wait_for_trigger`` with ``timeout`` and ``continue_on_timeout`` beside it: the
        hub's ``wait_for``."""
        self._only(path, raw, ("wait_for_trigger", "timeout", "continue_on_timeout"))
        items = self.items(path + ("wait_for_trigger",), raw["wait_for_trigger"], "trigger")
        triggers = [t for t in (self.trigger(p, v) for p, v in items) if t]
        cfg = self.model(path, WaitFor, {"trigger": [], **{k: raw[k] for k in ("timeout", "continue_on_timeout") if k in raw}})
        return A.WaitFor(pos, triggers, cfg.timeout, cfg.continue_on_timeout)

    def _wait_template(self, path: Path, pos: tuple, raw: dict) -> A.Step:
        """HA's ``wait_template``: goes on at once when the template is already true, else when a
        state change makes it true (with the run's variables, as in HA), or at ``timeout``."""
        self._only(path, raw, ("wait_template", "timeout", "continue_on_timeout"))
        template = raw["wait_template"]
        if not isinstance(template, str) or not is_template(template):
            self.fail(path + ("wait_template",), "wait_template is a template, e.g. \"{{ is_state('lock.door', 'locked') }}\"")
            raise Invalid
        cond = self.condition(path + ("wait_template",), {"condition": "template", "value_template": template})
        if cond is None:
            raise Invalid
        cfg = self.model(path, WaitFor, {"trigger": [], **{k: raw[k] for k in ("timeout", "continue_on_timeout") if k in raw}})
        return A.WaitTemplate(pos, cond, cfg.timeout, cfg.continue_on_timeout)

    def _parallel(self, path: Path, pos: tuple, raw: dict) -> A.Step:
        """HA's ``parallel``: each item (a step, or a ``sequence:`` of steps) runs at the same time."""
        self._only(path, raw, ("parallel",))
        branches = []
        for i, (item_path, item) in enumerate(self.items(path + ("parallel",), raw["parallel"], "action")):
            try:
                step = self.action(item_path, pos + ("parallel", i), item)
            except Invalid:
                continue
            if step is not None:
                branches.append(step)
        return A.Parallel(pos, branches)

    def _plugin_service(self, path: Path, pos: tuple, name: str, cfg: ServiceAction) -> A.Step | None:
        """A plugin action named like a service (``action: mqtt.publish`` with ``data``, as HA writes
        it): the same as the plugin's own ``mqtt.publish: {...}`` step."""
        plugin, schema, runner = self.ctx.hub.rule_actions[name]
        if cfg.target or cfg.entity_id is not None:
            self.fail(path + ("target",), f"{name} takes no target: give everything in data")
            return None
        config: Any = {name: cfg.data}
        if schema is not None:
            try:
                config = schema.model_validate(config)
            except ValidationError as err:
                for error in err.errors(include_url=False):
                    loc = tuple(error["loc"])
                    self.fail(path + ("data",) + (loc[1:] if loc[:1] == (name,) else loc), error["msg"])
                return None
        step = A.PluginAction(pos, name, plugin, config, runner)
        step.continue_on_error = cfg.continue_on_error
        return step

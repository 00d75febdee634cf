"""Loading and validating ``configuration.yaml``.

A hub usually runs headless on a small box, so a bad configuration has to be fixable from the error
alone: every problem is reported with the file, the line and the dotted key, and all problems are
collected in one pass instead of stopping at the first one.
"""

from __future__ import annotations

import copy
import difflib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError
from pydantic_core import PydanticCustomError

CORE_SECTION = "hub"
SECRETS_FILE = "secrets.yaml"

# Used when there is no configuration file, so a fresh install shows something working. The demo
# home needs a place on Earth for its "after sunset" rule; it pretends to be in Paris.
EMBEDDED_DEFAULT: dict = {"hub": {"latitude": 48.8566, "longitude": 2.3522}, "demo": {}, "chain": {}}

_MAP_TAG = "tag:yaml.org,2002:map"
_SEQ_TAG = "tag:yaml.org,2002:seq"
_MERGE_TAG = "tag:yaml.org,2002:merge"
_SECRET_TAG = "!secret"
_INPUT_TAG = "!input"
# Tags a scalar may carry. Collection tags such as !!set on a scalar would construct lazily into
# something half-built (and unhashable as a key), so they are refused up front.
_SCALAR_TAGS = {
    f"tag:yaml.org,2002:{name}" for name in ("null", "bool", "int", "float", "str", "timestamp", "binary")
}

# A position in the YAML data: mapping keys and list indexes from the top of the file.
YamlPath = tuple[Any, ...]


#: A problem found by a cross-field check: its pydantic-style location inside the model being
#: validated (``("devices", 2, "connection")``), and the message.
Problem = tuple[tuple[str | int, ...], str]


def cross_checked(
    data: Any,
    handler: Callable[[Any], BaseModel],
    check: Callable[[Any, BaseModel | None], Iterable[Problem]],
    title: str = "configuration",
) -> BaseModel:
    """For a ``model_validator(mode="wrap")``: the model, or one ValidationError holding both the
    field errors and every problem of ``check``.

    An ``after`` model validator runs only once every field is valid, and can only fail as a whole, so
    ``hub config check`` showed an unknown connection only after the type error beside it was fixed,
    and at the section's line. ``check`` gets the raw data and the model (None when fields failed):
    it checks what did validate (see :func:`valid_fields`) and locates each problem at its key.
    """
    try:
        model, errors = handler(data), []
    except ValidationError as exc:
        model, errors = None, exc.errors(include_url=False)
    try:
        problems = list(check(_plain(data), model))
    except Exception:  # noqa: BLE001 - a check of half-valid data tripping on it must not hide the errors
        if not errors:
            raise
        problems = []
    if not errors and not problems:
        return model
    # Re-raised as custom errors with the same type, location and message: pydantic keeps the
    # locations of a ValidationError raised in a wrap validator, relative to where it runs.
    line_errors = [
        {"type": PydanticCustomError(error["type"], error["msg"]), "loc": error["loc"], "input": error.get("input")}
        for error in errors
    ]
    line_errors += [
        {"type": PydanticCustomError("cross_field", message), "loc": tuple(loc), "input": None}
        for loc, message in problems
    ]
    raise ValidationError.from_exception_data(title, line_errors)


def _plain(value: Any) -> Any:
    """Raw data as a check expects it, also when a caller passed model instances instead of mappings."""
    if isinstance(value, BaseModel):
        return value.model_dump(by_alias=True)
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_plain(item) for item in value]
    return value


@cache
def _field_adapter(model: type[BaseModel], name: str) -> TypeAdapter:
    info = model.model_fields[name]
    return TypeAdapter(Annotated[(info.annotation, *info.metadata)] if info.metadata else info.annotation)


def valid_fields(model: type[BaseModel], data: Any, names: Iterable[str]) -> dict[str, Any]:
    """The fields ``names`` of ``model`` that are valid in the raw mapping ``data`` on their own, absent
    ones at their default: what cross-field checks can still rely on when a sibling field is wrong."""
    found: dict[str, Any] = {}
    if not isinstance(data, dict):
        return found
    for name in names:
        info = model.model_fields[name]
        key = info.alias if info.alias and info.alias in data else name
        if key not in data:
            if not info.is_required():
                found[name] = info.get_default(call_default_factory=True)
            continue
        try:
            found[name] = _field_adapter(model, name).validate_python(data[key])
        except ValidationError:
            pass
    return found


def duplicates(items: Iterable[tuple[Any, tuple, str]], what: str) -> list[Problem]:
    """A problem at every place of each value used more than once, naming the other places, so both
    ends of a copy-paste mistake are found. ``items`` are (value, location, description)."""
    places: dict[Any, list[tuple[tuple, str]]] = {}
    for value, loc, label in items:
        places.setdefault(value, []).append((loc, label))
    problems: list[Problem] = []
    for value, found in places.items():
        for loc, _ in found if len(found) > 1 else ():
            others = ", ".join(label for other, label in found if other != loc)
            problems.append((loc, f"{what} {value} is also used by {others}"))
    return problems


class CoreConfig(BaseModel):
    """The ``hub:`` section. Unknown keys are errors: a misspelt option silently falling back to its
    default is the hardest kind of configuration mistake to notice."""

    model_config = ConfigDict(extra="forbid")

    name: str = "Ruff Hub"
    host: str = "127.0.0.1"
    port: int = Field(8123, ge=1, le=65535)
    history_days: float = Field(10, gt=0, description="How long state history is kept.")
    commit_interval: float = Field(5.0, gt=0, le=60, description="Seconds between recorder commits.")
    command_timeout: float = Field(10, gt=0)
    setup_timeout: float = Field(30, gt=0)
    restart_backoff_max: float = Field(60, gt=0, description="Cap of a crashed driver's restart back-off.")
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    latitude: float | None = Field(None, ge=-90, le=90)
    longitude: float | None = Field(None, ge=-180, le=180)
    time_zone: str | None = None


@dataclass(frozen=True)
class ConfigIssue:
    """One problem, located precisely enough to be fixed with an editor and nothing else."""

    file: str | None  # path as given; None for the embedded default
    line: int | None  # 1-based
    column: int | None  # 1-based
    key: str | None  # dotted path like "modbus.connections[0].port"; None for file-level problems
    message: str

    def __str__(self) -> str:
        # The compiler-style "file:line:col:" prefix lets editors and terminals jump to the spot.
        where = self.file if self.file is not None else "<embedded default configuration>"
        if self.line is not None:
            where += f":{self.line}"
            if self.column is not None:
                where += f":{self.column}"
        if self.key:
            return f"{where}: {self.key}: {self.message}"
        return f"{where}: {self.message}"


def format_issues(issues: list[ConfigIssue]) -> str:
    """One issue per line, the form both the CLI and the log use."""
    return "\n".join(str(issue) for issue in issues)


class ConfigError(Exception):
    """Raised by callers that cannot go on with an invalid configuration; keeps the issues so they
    can still be shown individually (e.g. by the API)."""

    def __init__(self, issues: list[ConfigIssue]) -> None:
        self.issues = list(issues)
        super().__init__(format_issues(self.issues))


@dataclass
class LoadedConfig:
    """The outcome of loading, valid or not: callers decide whether issues are fatal.

    ``core`` is always usable (defaults when the ``hub:`` section is invalid). Plugin sections
    that failed validation are left out of ``plugin_configs``.
    """

    path: Path | None  # None = embedded default
    core: CoreConfig
    # repr=False: these may hold resolved secrets, and dataclass reprs end up in logs and tracebacks.
    sections: dict[str, Any] = field(repr=False)
    plugin_configs: dict[str, Any] = field(repr=False)
    issues: list[ConfigIssue]
    #: The ``!secret`` values used, so the hub can scrub them from its log (hub.core.redact).
    secrets: frozenset[str] = field(default=frozenset(), repr=False)

    @property
    def ok(self) -> bool:
        return not self.issues


class _Loader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):
    """Our own subclass, so nothing done to it can change ``yaml.safe_load`` for other code. On
    libyaml's parser where PyYAML has it: a thousand rules load in a fraction of the pure-Python
    parser's time, with the same line and column marks."""


def _position(node: yaml.Node) -> tuple[int, int]:
    return node.start_mark.line + 1, node.start_mark.column + 1


def _short_tag(tag: str) -> str:
    # Shown as written in the file: "!!set", not "tag:yaml.org,2002:set".
    return tag.replace("tag:yaml.org,2002:", "!!")


def _dotted(path: YamlPath) -> str:
    text = ""
    for part in path:
        if isinstance(part, int) and not isinstance(part, bool):
            text += f"[{part}]"
        elif text:
            text += f".{part}"
        else:
            text = str(part)
    return text


@dataclass(frozen=True)
class BlueprintInput:
    """``!input name`` as read: kept apart from strings so a blueprint's placeholder is never taken
    for a value (a rule outside a blueprint that holds one is refused by the rule parser)."""

    name: str
    line: int | None = None


class _Secrets:
    """``secrets.yaml`` next to the configuration, read only when a ``!secret`` asks for it, so a
    configuration without secrets never depends on that file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.issues: list[ConfigIssue] = []
        self._loaded = False
        self._values: dict | None = None

    def values(self) -> dict | None:
        """The secrets by name, or None when the file does not exist."""
        if not self._loaded:
            self._loaded = True
            if self.path.is_file():
                document = _Document(str(self.path), secrets=None)
                data = document.load(self.path)
                self.issues = document.issues
                self._values = data if isinstance(data, dict) else {}
        return self._values


class _Document:
    """Turns one YAML file into plain data plus the line and column of every key and list item.

    PyYAML's constructor throws positions away and silently keeps the last of duplicate keys, so
    the composed node tree is walked here instead.
    """

    def __init__(self, file: str | None, secrets: _Secrets | None, *, top_mapping: bool = True,
                 inputs: bool = False) -> None:
        self.file = file
        self.inputs = inputs  # '!input' is read (rules and blueprints only)
        self.top_mapping = top_mapping
        self.issues: list[ConfigIssue] = []
        self.positions: dict[YamlPath, tuple[int, int]] = {}
        # Values already reported (bad secret, bad tag): validation errors on them would be noise.
        self.broken: set[YamlPath] = set()
        self.secret_texts: set[str] = set()
        self.secrets = secrets
        self._loader: _Loader | None = None
        self._built: dict[int, Any] = {}
        self._building: set[int] = set()

    def load(self, path: Path) -> Any:
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as err:
            self.issues.append(ConfigIssue(self.file, None, None, None, f"cannot read the file: {err}"))
            return None
        return self.parse(text)

    def parse(self, text: str) -> Any:
        """The file's data, or None when it is not usable YAML (the reason is in ``issues``)."""
        try:
            self._loader = _Loader(text)
            root = self._loader.get_single_node()
        except yaml.MarkedYAMLError as err:
            self._syntax_error(err)
            return None
        except yaml.reader.ReaderError as err:  # a control character; it has no mark, only an offset
            line = text.count("\n", 0, err.position) + 1
            message = f"invalid YAML: character #x{err.character:04x} is not allowed"
            self.issues.append(ConfigIssue(self.file, line, None, None, message))
            return None
        if root is None:  # empty file, or only comments
            return {}
        data = self._build(root, ())
        if self.top_mapping and not isinstance(data, dict):
            line, column = _position(root)
            self.issues.append(
                ConfigIssue(
                    self.file, line, column, None,
                    "the top level must be a mapping of section names (like 'hub:')",
                )
            )
            return None
        return data

    def _syntax_error(self, err: yaml.MarkedYAMLError) -> None:
        # Built from the problem and context texts only: str(err) quotes a snippet of the file,
        # which could be a secret.
        mark = err.problem_mark or err.context_mark
        message = f"invalid YAML: {err.problem or err.context}"
        if err.problem and err.context:
            message += f" ({err.context}"
            if err.context_mark is not None:
                message += f" at line {err.context_mark.line + 1}"
            message += ")"
        line, column = (mark.line + 1, mark.column + 1) if mark is not None else (None, None)
        self.issues.append(ConfigIssue(self.file, line, column, None, message))

    def issue(self, path: YamlPath, message: str) -> None:
        """Report at the deepest part of ``path`` that exists in the file."""
        line = column = None
        for end in range(len(path), -1, -1):
            if path[:end] in self.positions:
                line, column = self.positions[path[:end]]
                break
        self.issues.append(ConfigIssue(self.file, line, column, _dotted(path) or None, message))

    def _issue_at(self, node: yaml.Node, path: YamlPath, message: str) -> None:
        line, column = _position(node)
        self.issues.append(ConfigIssue(self.file, line, column, _dotted(path) or None, message))

    def _fail(self, node: yaml.Node, path: YamlPath, message: str) -> None:
        self._issue_at(node, path, message)
        self.broken.add(path)

    def _build(self, node: yaml.Node, path: YamlPath) -> Any:
        # Aliases share nodes: building each node once keeps "billion laughs" files cheap, and the
        # in-progress set catches an anchor that contains itself.
        if id(node) in self._built:
            return self._built[id(node)]
        if id(node) in self._building:
            self._fail(node, path, "an alias refers to the mapping or list that contains it")
            return None
        self._building.add(id(node))
        try:
            value = self._build_node(node, path)
        finally:
            self._building.discard(id(node))
        self._built[id(node)] = value
        return value

    def _build_node(self, node: yaml.Node, path: YamlPath) -> Any:
        if node.tag == _SECRET_TAG:
            return self._secret(node, path)
        if node.tag == _INPUT_TAG and self.inputs:  # a blueprint's placeholder: hub.rules.blueprints
            if isinstance(node, yaml.ScalarNode) and node.value:
                return BlueprintInput(node.value, _position(node)[0])
            self._fail(node, path, "!input needs the name of an input, like '!input motion_entity'")
            return None
        if isinstance(node, yaml.MappingNode) and node.tag == _MAP_TAG:
            return self._mapping(node, path)
        if isinstance(node, yaml.SequenceNode) and node.tag == _SEQ_TAG:
            items = []
            for index, item in enumerate(node.value):
                self.positions.setdefault(path + (index,), _position(item))
                items.append(self._build(item, path + (index,)))
            return items
        if isinstance(node, yaml.ScalarNode) and node.tag in _SCALAR_TAGS:
            try:
                return self._loader.construct_object(node)
            # ValueError: a plain "2024-13-45" is resolved as a timestamp and fails in datetime.
            except (yaml.constructor.ConstructorError, ValueError) as err:
                self._fail(node, path, f"cannot read this value: {getattr(err, 'problem', None) or err}")
                return None
        self._fail(node, path, f"unsupported tag {_short_tag(node.tag)!r}")
        return None

    def _mapping(self, node: yaml.MappingNode, path: YamlPath) -> dict:
        result: dict = {}
        first_lines: dict[Any, int] = {}
        merges = []
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE_TAG:
                merges.append(value_node)
                continue
            if not isinstance(key_node, yaml.ScalarNode) or key_node.tag == _SECRET_TAG:
                self._issue_at(key_node, path, "keys must be plain names or numbers")
                continue
            if key_node.tag not in _SCALAR_TAGS:
                self._issue_at(key_node, path, f"unsupported tag {_short_tag(key_node.tag)!r}")
                continue
            try:
                key = self._loader.construct_object(key_node)
            except (yaml.constructor.ConstructorError, ValueError) as err:
                self._issue_at(key_node, path, f"cannot read this key: {getattr(err, 'problem', None) or err}")
                continue
            line, column = _position(key_node)
            if key in first_lines:
                self._issue_at(
                    key_node, path + (key,), f"duplicate key {key!r} (first at line {first_lines[key]})"
                )
                continue
            first_lines[key] = line
            # setdefault: keys written here must win over keys of the same name merged in with '<<'.
            self.positions.setdefault(path + (key,), (line, column))
            result[key] = self._build(value_node, path + (key,))
        # YAML merge keys ('<<: *defaults'): keys written in the mapping itself win, and among
        # several merged mappings the earlier one wins, as in PyYAML.
        for merge in merges:
            sources = merge.value if isinstance(merge, yaml.SequenceNode) else [merge]
            for source in sources:
                merged = self._build(source, path)
                if not isinstance(merged, dict):
                    self._issue_at(source, path, "'<<' can only merge mappings")
                    continue
                for key, value in merged.items():
                    result.setdefault(key, value)
        return result

    def _secret(self, node: yaml.Node, path: YamlPath) -> Any:
        if not isinstance(node, yaml.ScalarNode) or not node.value:
            self._fail(node, path, "!secret needs the name of a secret, like '!secret modbus_password'")
            return None
        name = node.value
        if self.secrets is None:
            self._fail(node, path, "!secret cannot be used in the secrets file itself")
            return None
        values = self.secrets.values()
        if values is None:
            self._fail(node, path, f"secret {name!r} requested but {self.secrets.path} does not exist")
            return None
        if name not in values:
            self._fail(node, path, f"secret {name!r} is not defined in {self.secrets.path}")
            return None
        value = values[name]
        if isinstance(value, (str, int, float)) and not isinstance(value, bool) and str(value):
            self.secret_texts.add(str(value))
        return value

    def validate(self, at: str | YamlPath, value: Any, schema: type[BaseModel]) -> BaseModel | None:
        """The validated model, or None after reporting every error in the section (``at`` is a
        section name or the YAML path of ``value``)."""
        base: YamlPath = at if isinstance(at, tuple) else (at,)
        try:
            return schema.model_validate(value)
        except ValidationError as err:
            self.report(base, err, value)
            return None
        except Exception as exc:  # noqa: BLE001 - a plugin's validator is plugin code: contain it
            self.issue(base, self._redact(f"the plugin's configuration schema failed: {type(exc).__name__}: {exc}"))
            return None

    def report(self, base: YamlPath, err: ValidationError, value: Any) -> None:
        """Every error of a pydantic validation of the data at ``base``, each at its own line."""
        for error in err.errors(include_url=False):
            path = self._locate(base, error["loc"], value)
            if not any(path[:end] in self.broken for end in range(1, len(path) + 1)):
                self.issue(path, self._redact(error["msg"]))

    def _locate(self, path: YamlPath, loc: tuple, value: Any) -> YamlPath:
        """The YAML path of a pydantic error location.

        ``loc`` also contains things that are not in the file, such as union member names; those
        are skipped. A last element that is not in the file is kept: it is the missing field.
        """
        for index, part in enumerate(loc):
            if isinstance(value, dict) and part in value:
                value = value[part]
                path += (part,)
            elif isinstance(value, list) and isinstance(part, int) and 0 <= part < len(value):
                value = value[part]
                path += (part,)
            elif index == len(loc) - 1:
                path += (part,)
        return path

    def _redact(self, message: str) -> str:
        # The message comes from pydantic's "msg", which never carries the input, but a plugin's own
        # validator may put the value in its ValueError text.
        for text in sorted(self.secret_texts, key=len, reverse=True):
            message = message.replace(text, "***")
        return message


#: The YAML reader with positions, for other files that need errors by line (``automations.yaml``).
YamlDocument = _Document


def read_yaml(path: Path, *, top_mapping: bool = False, inputs: bool = False) -> tuple[Any, YamlDocument]:
    """Read a YAML file with line numbers for every key and item, ``!secret`` resolved from the
    ``secrets.yaml`` beside it (``inputs``: ``!input`` read as a ``BlueprintInput``, for rules and
    blueprints). Problems are in the document's ``issues``; data is None if unusable."""
    document = _Document(str(path), secrets=_Secrets(Path(path).parent / SECRETS_FILE), top_mapping=top_mapping,
                         inputs=inputs)
    return document.load(Path(path)), document


def _unknown_section(name: Any, plugin_schemas: dict[str, type[BaseModel] | None]) -> str:
    installed = sorted(plugin_schemas)
    message = f"unknown section {name!r}: no installed plugin has that name"
    close = difflib.get_close_matches(str(name), installed + [CORE_SECTION], n=1)
    if close:
        message += f" (did you mean {close[0]!r}?)"
    return message + f"; installed: {', '.join(installed) or 'none'}"


def load_config(path: Path | None, plugin_schemas: dict[str, type[BaseModel] | None]) -> LoadedConfig:
    """Load and validate the configuration, collecting every issue rather than raising.

    ``plugin_schemas`` maps every installed plugin to its config model (None when it declared
    none). A missing file means the embedded default: deciding whether that is acceptable (e.g.
    when the user named the file explicitly) is the caller's job.
    """
    if path is None or not Path(path).exists():
        document = _Document(None, secrets=None)
        data: Any = copy.deepcopy(EMBEDDED_DEFAULT)
        path = None
    else:
        path = Path(path)
        document = _Document(str(path), secrets=_Secrets(path.parent / SECRETS_FILE))
        data = document.load(path)

    core = CoreConfig()
    sections: dict[str, Any] = {}
    plugin_configs: dict[str, Any] = {}
    for name, value in (data or {}).items():
        if value is None:  # "demo:" with nothing after it
            value = {}
        if name == CORE_SECTION:
            validated = document.validate(name, value, CoreConfig)
            if validated is not None:
                core = validated
        elif name not in plugin_schemas:
            document.issue((name,), _unknown_section(name, plugin_schemas))
        else:
            sections[name] = value
            schema = plugin_schemas[name]
            if schema is not None:
                validated = document.validate(name, value, schema)
                if validated is not None:
                    plugin_configs[name] = validated
            elif isinstance(value, dict):
                plugin_configs[name] = value
            else:
                document.issue((name,), "this plugin takes a mapping of options")

    issues = document.issues
    if document.secrets is not None:
        issues += document.secrets.issues
    # In file order, the configuration file first: that is the order people fix them in.
    issues.sort(key=lambda issue: (issue.file != document.file, issue.line or 0, issue.column or 0))
    return LoadedConfig(path=path, core=core, sections=sections, plugin_configs=plugin_configs, issues=issues,
                        secrets=frozenset(document.secret_texts))


def check_config(path: Path | None, plugin_schemas: dict[str, type[BaseModel] | None]) -> list[ConfigIssue]:
    """For ``hub check-config``-style callers that only want the verdict."""
    return load_config(path, plugin_schemas).issues

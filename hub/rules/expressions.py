"""Safe expressions for rule conditions and action arguments.

Rules are written by users (and may come from shared blueprints), so an expression must never be
able to reach Python itself: no ``eval``, no imports, no ``obj.__class__.__mro__`` walks. Rather
than sandboxing Python, which has a long history of escapes, the text is parsed with :mod:`ast`,
every node is checked against a small whitelist, and the tree is turned into nested closures. The
evaluator can therefore only do what a closure below was written to do, and evaluating a compiled
expression costs a few function calls per node, which matters on the rule engine's hot path.

Where the pieces live:

* Variables (``trigger``, ``this``...) come from the mapping passed to ``evaluate`` on each run.
* Functions come from a table fixed at compile time (:data:`DEFAULT_FUNCTIONS` plus the engine's
  ``states``, ``is_state``, ``now``...). Binding them early makes an unknown function a compile-time
  error (a typo fails when the rule loads, not at 3 am) and keeps functions out of reach as values:
  only a name written directly before ``(`` can be called.
* Attribute access reads dict keys (``trigger.to_state.value``) and a few whitelisted attributes of
  known value types (datetimes, strings, :class:`~hub.core.state.State`). Types are checked with
  ``type(obj)``, never ``isinstance``, which would ask the object itself for ``__class__``.

What values expose and the size guards on operators are in :mod:`hub.rules.safe_ops`; templates
(``"{{ ... }}"`` strings in action arguments) in :mod:`hub.rules.templates`.
"""

from __future__ import annotations

import ast
import operator
import re
import warnings
from collections.abc import Callable, Mapping
from typing import Any

from hub.rules.safe_ops import (  # noqa: F401 - allow_attributes and DEFAULT_FUNCTIONS are public here
    _ATTRIBUTES,
    _BINARY,
    _BINARY_SYMBOLS,
    _COMPARE,
    _COMPARE_SYMBOLS,
    _METHODS,
    DEFAULT_FUNCTIONS,
    _string_method_guard,
    allow_attributes,
)

__all__ = [
    "DEFAULT_FUNCTIONS",
    "ENTITY_FUNCTIONS",
    "Expression",
    "ExpressionError",
    "allow_attributes",
    "compile_expression",
]

Env = Mapping[str, Any]
Fn = Callable[[Env], Any]

#: Bounds on what one expression may cost to compile: rules are reloaded as a whole, and a pasted
#: megabyte of parentheses should fail fast with a message, not stall the hub.
MAX_LENGTH = 2000
MAX_NODES = 250
MAX_DEPTH = 60

#: Functions whose first argument is an entity id; literal ids passed to them tell the engine which
#: entities a condition reads, so it can re-evaluate only when one of them changes.
ENTITY_FUNCTIONS = frozenset({"states", "state_attr", "is_state", "is_state_attr", "has_value"})


class ExpressionError(Exception):
    """Anything wrong with an expression, at compile time or run time, pointing at the culprit.

    ``position`` is a 0-based character offset into ``expression`` (the whole template for
    templates), so an editor or the API can underline the exact spot.
    """

    def __init__(self, message: str, expression: str = "", position: int = 0) -> None:
        super().__init__(message)
        self.message = message
        self.expression = expression
        self.position = position

    def __str__(self) -> str:
        shown = re.sub(r"[\r\n\t]", " ", self.expression)
        prefix = f"{self.message} at position {self.position} in: "
        return f"{prefix}{shown}\n{' ' * (len(prefix) + self.position)}^"

    def __reduce__(self):  # keep the attributes when the error crosses a process boundary
        return (type(self), (self.message, self.expression, self.position))


# --- compiling -----------------------------------------------------------------------------------


class _Compiler:
    """Turns one validated AST into closures, remembering where each node came from."""

    def __init__(self, text: str, functions: Mapping[str, Callable], source: str, base: int) -> None:
        self.text = text
        self.functions = functions
        self.source = source  # the whole text errors refer to (a template, or the expression)
        self.base = base  # where ``text`` starts within ``source``
        self.line_starts = [0] + [m.end() for m in re.finditer(r"\r\n|\r|\n", text)]
        self.names: set[str] = set()
        self.entity_ids: set[str] = set()

    # positions

    def offset(self, lineno: int | None, col: int | None, *, in_bytes: bool = True) -> int:
        """Absolute character offset in ``source``; the AST counts columns in UTF-8 bytes."""
        if lineno is None or col is None:
            return self.base
        starts = self.line_starts
        line_no = min(max(lineno, 1), len(starts)) - 1
        start = starts[line_no]
        end = starts[line_no + 1] if line_no + 1 < len(starts) else len(self.text)
        if in_bytes:
            line = self.text[start:end].encode("utf-8", "surrogatepass")
            col = len(line[: max(col, 0)].decode("utf-8", "ignore"))
        return self.base + min(start + max(col, 0), len(self.text))

    def pos(self, node: ast.AST) -> int:
        return self.offset(getattr(node, "lineno", None), getattr(node, "col_offset", None))

    def end(self, node: ast.AST) -> int:
        return self.offset(getattr(node, "end_lineno", None), getattr(node, "end_col_offset", None))

    def between(self, left: ast.AST, right: ast.AST, token: str) -> int:
        """Where ``token`` (an operator, a bracket) sits between two nodes: the caret belongs there."""
        start, stop = self.end(left), self.pos(right)
        found = self.source.find(token, start, stop)
        return found if found >= 0 else self.pos(left)

    def error(self, message: str, position: int) -> ExpressionError:
        return ExpressionError(message, self.source, position)

    def runtime(self, exc: Exception, position: int) -> ExpressionError:
        """Wrap an exception raised while evaluating, keeping its message and adding our position."""
        if isinstance(exc, ExpressionError):
            message = exc.message
        elif isinstance(exc, KeyError):
            message = f"key {exc.args[0]!r} not found" if exc.args else "key not found"
        else:
            message = str(exc) or type(exc).__name__
        return ExpressionError(message, self.source, position)

    # nodes

    def compile(self, node: ast.AST) -> Fn:
        method = getattr(self, "c_" + type(node).__name__, None)
        if method is None:
            raise self.error(f"{_describe(node)} is not allowed", self.pos(node))
        return method(node)

    def c_Constant(self, node: ast.Constant) -> Fn:
        value = node.value
        if value is not None and type(value) not in (int, float, str, bool):
            raise self.error(f"{type(value).__name__} literals are not allowed", self.pos(node))
        return lambda env: value

    def c_Name(self, node: ast.Name) -> Fn:
        key = node.id
        position = self.pos(node)
        self.check_name(key, position)
        if key in self.functions:
            raise self.error(f"function {key!r} can only be called", position)
        self.names.add(key)
        error = self.error

        def name(env: Env) -> Any:
            try:
                return env[key]
            except KeyError:
                raise error(f"unknown name {key!r}", position) from None

        return name

    def c_UnaryOp(self, node: ast.UnaryOp) -> Fn:
        operand = self.compile(node.operand)
        if isinstance(node.op, ast.Not):
            return lambda env: not operand(env)
        if isinstance(node.op, ast.USub):
            op = operator.neg
        elif isinstance(node.op, ast.UAdd):
            op = operator.pos
        else:
            raise self.error(f"{_describe(node.op)} is not allowed", self.pos(node))
        position, runtime = self.pos(node), self.runtime

        def unary(env: Env) -> Any:
            value = operand(env)
            try:
                return op(value)
            except Exception as exc:
                raise runtime(exc, position) from None

        return unary

    def c_BinOp(self, node: ast.BinOp) -> Fn:
        op = _BINARY.get(type(node.op))
        if op is None:
            raise self.error(f"{_describe(node.op)} is not allowed", self.pos(node))
        left, right = self.compile(node.left), self.compile(node.right)
        position = self.between(node.left, node.right, _BINARY_SYMBOLS[type(node.op)])
        runtime = self.runtime

        def binary(env: Env) -> Any:
            a, b = left(env), right(env)
            try:
                return op(a, b)
            except Exception as exc:
                raise runtime(exc, position) from None

        return binary

    def c_BoolOp(self, node: ast.BoolOp) -> Fn:
        # ``a and b and c`` is ``a and (b and c)``: fold from the right into two-operand closures.
        *rest, last = [self.compile(value) for value in node.values]
        fn = last
        for first in reversed(rest):
            if isinstance(node.op, ast.And):
                fn = (lambda a, b: lambda env: a(env) and b(env))(first, fn)
            else:
                fn = (lambda a, b: lambda env: a(env) or b(env))(first, fn)
        return fn

    def c_IfExp(self, node: ast.IfExp) -> Fn:
        test, body, orelse = self.compile(node.test), self.compile(node.body), self.compile(node.orelse)
        return lambda env: body(env) if test(env) else orelse(env)

    def c_Compare(self, node: ast.Compare) -> Fn:
        runtime = self.runtime
        first = self.compile(node.left)
        steps = []
        left = node.left
        for op_node, right in zip(node.ops, node.comparators):
            if isinstance(op_node, (ast.Is, ast.IsNot)) and not (
                isinstance(right, ast.Constant) and right.value is None
            ):
                raise self.error("'is' may only compare with None", self.pos(right))
            position = self.between(left, right, _COMPARE_SYMBOLS[type(op_node)])
            steps.append((_COMPARE[type(op_node)], self.compile(right), position))
            left = right

        if len(steps) == 1:
            ((op, second, position),) = steps
            if isinstance(node.comparators[0], ast.Constant):  # ``x < 15``: skip a call per run
                constant = node.comparators[0].value

                def compare_constant(env: Env) -> Any:
                    a = first(env)
                    try:
                        return op(a, constant)
                    except Exception as exc:
                        raise runtime(exc, position) from None

                return compare_constant

            def compare(env: Env) -> Any:
                a, b = first(env), second(env)
                try:
                    return op(a, b)
                except Exception as exc:
                    raise runtime(exc, position) from None

            return compare

        def chain(env: Env) -> Any:
            a = first(env)
            for op, second, position in steps:
                b = second(env)
                try:
                    result = op(a, b)
                except Exception as exc:
                    raise runtime(exc, position) from None
                if not result:
                    return result
                a = b
            return result

        return chain

    def c_List(self, node: ast.List) -> Fn:
        items = [self.compile(item) for item in node.elts]
        return lambda env: [item(env) for item in items]

    def c_Tuple(self, node: ast.Tuple) -> Fn:
        items = [self.compile(item) for item in node.elts]
        return lambda env: tuple([item(env) for item in items])

    def c_Dict(self, node: ast.Dict) -> Fn:
        if any(key is None for key in node.keys):
            raise self.error("'**' unpacking is not allowed", self.pos(node))
        pairs = [(self.compile(k), self.compile(v)) for k, v in zip(node.keys, node.values)]
        position, runtime = self.pos(node), self.runtime

        def dictionary(env: Env) -> dict:
            items = [(key(env), value(env)) for key, value in pairs]
            try:
                return dict(items)
            except Exception as exc:  # an unhashable key
                raise runtime(exc, position) from None

        return dictionary

    def c_Subscript(self, node: ast.Subscript) -> Fn:
        value = self.compile(node.value)
        index = self.compile(node.slice)
        position = self.between(node.value, node.slice, "[")
        runtime = self.runtime

        def subscript(env: Env) -> Any:
            obj, key = value(env), index(env)
            try:
                return obj[key]
            except Exception as exc:
                raise runtime(exc, position) from None

        return subscript

    def c_Slice(self, node: ast.Slice) -> Fn:
        lower, upper, step = (
            self.compile(part) if part is not None else (lambda env: None)
            for part in (node.lower, node.upper, node.step)
        )
        return lambda env: slice(lower(env), upper(env), step(env))

    def attribute_name(self, node: ast.Attribute) -> tuple[str, int]:
        name = node.attr
        # The name is the last thing in the node's source (``a . b`` is legal, hence not col_offset).
        position = max(self.end(node) - len(name), self.pos(node))
        self.check_name(name, position)
        return name, position

    def c_Attribute(self, node: ast.Attribute) -> Fn:
        name, position = self.attribute_name(node)
        value = self.compile(node.value)
        error, runtime = self.error, self.runtime

        def attribute(env: Env) -> Any:
            obj = value(env)
            kind = type(obj)
            if kind is dict or (kind not in _ATTRIBUTES and issubclass(kind, Mapping)):
                try:
                    return obj[name]
                except KeyError:
                    raise error(f"key {name!r} not found", position) from None
            if name in _ATTRIBUTES.get(kind, ()):
                try:
                    return getattr(obj, name)
                except Exception as exc:
                    raise runtime(exc, position) from None
            if obj is None:
                raise error(f"cannot read {name!r} of None", position)
            raise error(f"{kind.__name__} has no readable attribute {name!r}", position)

        return attribute

    def c_Call(self, node: ast.Call) -> Fn:
        for arg in node.args:
            if isinstance(arg, ast.Starred):
                raise self.error("'*' unpacking is not allowed", self.pos(arg))
        if isinstance(node.func, ast.Name):
            return self.function_call(node)
        if isinstance(node.func, ast.Attribute):
            return self.method_call(node)
        raise self.error("only named functions can be called", self.pos(node.func))

    def function_call(self, node: ast.Call) -> Fn:
        func_name = node.func.id  # type: ignore[attr-defined]
        position = self.pos(node)
        self.check_name(func_name, position)
        function = self.functions.get(func_name)
        if function is None:
            raise self.error(f"unknown function {func_name!r}", position)
        if func_name in ENTITY_FUNCTIONS and node.args:
            first = node.args[0]
            if isinstance(first, ast.Constant) and type(first.value) is str:
                self.entity_ids.add(first.value)
        args = [self.compile(arg) for arg in node.args]
        keywords = {}
        for keyword in node.keywords:
            if keyword.arg is None:
                raise self.error("'**' unpacking is not allowed", self.pos(keyword))
            self.check_name(keyword.arg, self.pos(keyword))
            keywords[keyword.arg] = self.compile(keyword.value)
        runtime = self.runtime

        if keywords:

            def call_keywords(env: Env) -> Any:
                values = [arg(env) for arg in args]
                named = {key: value(env) for key, value in keywords.items()}
                try:
                    return function(*values, **named)
                except Exception as exc:
                    raise runtime(exc, position) from None

            return call_keywords

        if all(isinstance(arg, ast.Constant) for arg in node.args):  # ``states('sensor.t')``
            constants = tuple(arg.value for arg in node.args)  # type: ignore[attr-defined]

            def call_constants(env: Env) -> Any:
                try:
                    return function(*constants)
                except Exception as exc:
                    raise runtime(exc, position) from None

            return call_constants

        def call(env: Env) -> Any:
            values = [arg(env) for arg in args]
            try:
                return function(*values)
            except Exception as exc:
                raise runtime(exc, position) from None

        return call

    def method_call(self, node: ast.Call) -> Fn:
        func: ast.Attribute = node.func  # type: ignore[assignment]
        name, position = self.attribute_name(func)
        if not any(name in methods for methods in _METHODS.values()):
            raise self.error(f"unknown method {name!r}", position)
        if node.keywords:
            raise self.error("methods take no keyword arguments", self.pos(node.keywords[0]))
        target = self.compile(func.value)
        args = [self.compile(arg) for arg in node.args]
        error, runtime = self.error, self.runtime

        def method(env: Env) -> Any:
            obj = target(env)
            values = tuple([arg(env) for arg in args])
            kind = type(obj)
            if name not in _METHODS.get(kind, ()):
                what = "None" if obj is None else kind.__name__
                raise error(f"{what} has no method {name!r}", position)
            try:
                if kind is str:
                    _string_method_guard(obj, name, values)
                return getattr(obj, name)(*values)
            except Exception as exc:
                raise runtime(exc, position) from None

        return method

    def check_name(self, name: str, position: int) -> None:
        if name.startswith("_"):
            raise self.error(f"names starting with '_' are not allowed: {name!r}", position)


_DESCRIPTIONS = {
    "Lambda": "lambda",
    "ListComp": "a comprehension",
    "SetComp": "a comprehension",
    "DictComp": "a comprehension",
    "GeneratorExp": "a generator expression",
    "JoinedStr": "an f-string",
    "FormattedValue": "an f-string",
    "NamedExpr": "':=' assignment",
    "Await": "'await'",
    "Yield": "'yield'",
    "YieldFrom": "'yield'",
    "Starred": "'*' unpacking",
    "Set": "a set literal",
    "BitAnd": "'&'",
    "BitOr": "'|'",
    "BitXor": "'^'",
    "LShift": "'<<'",
    "RShift": "'>>'",
    "MatMult": "'@'",
    "Invert": "'~'",
}


def _describe(node: ast.AST) -> str:
    name = type(node).__name__
    return _DESCRIPTIONS.get(name, name)


def _parse(compiler: _Compiler) -> ast.expr:
    """``ast.parse`` with its errors turned into positioned ExpressionErrors."""
    text = compiler.text
    try:
        with warnings.catch_warnings():  # "invalid escape sequence" and friends: not the user's log
            warnings.simplefilter("ignore")
            return ast.parse(text, mode="eval").body
    except SyntaxError as exc:
        lineno, offset = exc.lineno, exc.offset
        if "null bytes" in str(exc.msg):
            position = compiler.base + text.find("\0")
        elif lineno is None or not offset:  # the parser ran off the end
            position = compiler.base + len(text.rstrip())
        else:
            position = compiler.offset(lineno, offset - 1, in_bytes=False)
        message = "unexpected end of expression" if exc.msg == "invalid syntax" and not offset else exc.msg
        raise compiler.error(f"syntax error: {message}", position) from None
    except UnicodeError as exc:  # lone surrogates
        position = compiler.base + min(getattr(exc, "start", 0), len(text))
        raise compiler.error("invalid character", position) from None
    except (ValueError, RecursionError, MemoryError, OverflowError) as exc:
        raise compiler.error(f"cannot parse: {exc}", compiler.base) from None


def _check_size_of_tree(body: ast.expr, compiler: _Compiler) -> None:
    """Bound the work (and the closure nesting) before compiling, without recursing ourselves."""
    nodes = 0
    stack = [(body, 1)]
    while stack:
        node, depth = stack.pop()
        nodes += 1
        if nodes > MAX_NODES:
            raise compiler.error(f"expression is too complex (over {MAX_NODES} parts)", compiler.pos(node))
        if depth > MAX_DEPTH:
            message = f"expression is nested too deeply (over {MAX_DEPTH} levels)"
            raise compiler.error(message, compiler.pos(node))
        stack.extend((child, depth + 1) for child in ast.iter_child_nodes(node))


class Expression:
    """A compiled expression: compile once when the rule loads, evaluate on every event."""

    __slots__ = ("text", "names", "entity_ids", "_fn")

    def __init__(self, text: str, names: frozenset[str], entity_ids: frozenset[str], fn: Fn) -> None:
        self.text = text
        self.names = names
        self.entity_ids = entity_ids
        self._fn = fn

    def evaluate(self, env: Env) -> Any:
        try:
            return self._fn(env)
        except ExpressionError:
            raise
        except Exception as exc:  # a truthiness or comprehension hook in some odd value; never leak it
            raise ExpressionError(str(exc) or type(exc).__name__, self.text, 0) from None

    def __repr__(self) -> str:
        return f"<Expression {self.text!r}>"


def _functions(functions: Mapping[str, Callable] | None) -> Mapping[str, Callable]:
    return DEFAULT_FUNCTIONS if not functions else {**DEFAULT_FUNCTIONS, **functions}


def _compile(text: str, functions: Mapping[str, Callable], source: str, base: int) -> tuple[Fn, _Compiler]:
    """Compile ``text``, which sits at offset ``base`` of ``source`` (a template, or itself)."""
    if len(text) > MAX_LENGTH:
        message = f"expression is too long ({len(text)} characters; the limit is {MAX_LENGTH})"
        raise ExpressionError(message, source, base + MAX_LENGTH)
    # Eval mode takes leading whitespace for an "unexpected indent", and templates always have some.
    stripped = text.lstrip(" \t\f\r\n")
    compiler = _Compiler(stripped, functions, source, base + len(text) - len(stripped))
    if not stripped.strip():
        raise compiler.error("empty expression", base + len(text))
    body = _parse(compiler)
    _check_size_of_tree(body, compiler)
    try:
        fn = compiler.compile(body)
    except RecursionError:  # only if the caller is already deep; the tree itself is bounded
        raise compiler.error("expression is nested too deeply", compiler.base) from None
    return fn, compiler


def compile_expression(text: str, functions: Mapping[str, Callable] | None = None) -> Expression:
    """Compile ``text``; ``functions`` (added to :data:`DEFAULT_FUNCTIONS`) are all it may call."""
    if not isinstance(text, str):
        raise ExpressionError(f"expression must be a string, not {type(text).__name__}", repr(text), 0)
    fn, compiler = _compile(text, _functions(functions), text, 0)
    return Expression(text, frozenset(compiler.names), frozenset(compiler.entity_ids), fn)

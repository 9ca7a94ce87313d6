"""A small declarative schema for the settings file, checked against the YAML node tree so
that every problem carries the line and column the admin wrote.

The same schema describes defaults and documentation, so the settings reference and the
JSON Schema can be generated from it instead of kept by hand.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import yaml


@dataclass(frozen=True, slots=True)
class Problem:
    """One settings problem, with its place."""

    file: str
    line: int
    column: int
    path: str
    message: str

    def __str__(self) -> str:
        return (
            f"{self.file}:{self.line}:{self.column}: {self.path or '(top level)'}: {self.message}"
        )


@dataclass(slots=True)
class Marks:
    """Where each settings path was written: path → (line, column), 1-based."""

    file: str
    places: dict[str, tuple[int, int]] = field(default_factory=dict)

    def place(self, path: str) -> tuple[int, int]:
        """The place of ``path`` or of its nearest written ancestor."""
        while True:
            if path in self.places:
                return self.places[path]
            cut = max(path.rfind("."), path.rfind("["))
            if cut <= 0:
                return self.places.get("", (1, 1))
            path = path[:cut]

    def problem(self, path: str, message: str) -> Problem:
        line, column = self.place(path)
        return Problem(self.file, line, column, path, message)


class Node:
    """Base of all schema nodes. ``convert`` returns the Python value or records problems."""

    doc: str = ""

    def convert(self, node: yaml.Node, path: str, ctx: Checker) -> Any:
        raise NotImplementedError

    def json_schema(self) -> dict[str, Any]:
        raise NotImplementedError


_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


class Checker:
    """Walks a YAML node tree against a schema, collecting problems and marks."""

    def __init__(self, file: str, environ: Mapping[str, str]) -> None:
        self.marks = Marks(file)
        self.problems: list[Problem] = []
        self.environ = environ
        self.from_environment: dict[str, str] = {}
        """Each value a ``${VAR}`` took from the environment → the variable's name."""

    def mark(self, path: str, node: yaml.Node) -> None:
        self.marks.places[path] = (node.start_mark.line + 1, node.start_mark.column + 1)

    def problem(self, path: str, node: yaml.Node, message: str) -> None:
        self.problems.append(
            Problem(
                self.marks.file, node.start_mark.line + 1, node.start_mark.column + 1, path, message
            )
        )

    def scalar_text(self, node: yaml.ScalarNode, path: str) -> str | None:
        """The scalar's text with ``${VAR}`` / ``${VAR:-default}`` expanded."""
        text = node.value
        missing: list[str] = []

        def expand(match: re.Match[str]) -> str:
            name, default = match.group(1), match.group(2)
            if name in self.environ:
                value = self.environ[name]
                self.from_environment.setdefault(value, name)
                return value
            if default is not None:
                return default
            missing.append(name)
            return ""

        expanded = _ENV.sub(expand, text)
        for name in missing:
            self.problem(
                path, node, f"environment variable {name} is not set (use ${{{name}:-default}})"
            )
        return None if missing else expanded


_SHORTEST_HIDDEN = 4
"""Shorter environment values (ports, counts, flags) are shown: they hide no secret, and
hiding them would garble messages that merely contain the same digits."""


def hide_environment_values(problems: list[Problem], values: Mapping[str, str]) -> list[Problem]:
    """``problems`` with every value taken from the environment (``values``: value →
    variable name) shown as ``${NAME}``: an environment variable may hold a secret, and
    settings errors are printed and logged."""
    hidden = sorted(
        ((value, name) for value, name in values.items() if len(value) >= _SHORTEST_HIDDEN),
        key=lambda pair: -len(pair[0]),
    )
    if not hidden:
        return problems
    return [replace(problem, message=_hide(problem.message, hidden)) for problem in problems]


def _hide(message: str, hidden: list[tuple[str, str]]) -> str:
    for value, name in hidden:
        # Messages quote values with repr(), which escapes some characters.
        for form in (repr(value)[1:-1], value):
            message = message.replace(form, f"${{{name}}}")
    return message


def _kind(node: yaml.Node) -> str:
    if isinstance(node, yaml.MappingNode):
        return "a mapping"
    if isinstance(node, yaml.SequenceNode):
        return "a list"
    return "a scalar"


def _child(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


_RESOLVER = yaml.resolver.Resolver()
_CONSTRUCTOR = yaml.constructor.SafeConstructor()


def _resolve(text: str, node: yaml.ScalarNode) -> Any:
    """Type an (expanded) scalar the way YAML would have; quoted scalars stay strings."""
    if node.style in ("'", '"'):
        return text
    tag = _RESOLVER.resolve(yaml.ScalarNode, text, (True, False))
    try:
        return _CONSTRUCTOR.construct_object(yaml.ScalarNode(tag, text))
    except (yaml.constructor.ConstructorError, ValueError):
        return text


@dataclass
class Scalar(Node):
    """A scalar of one type: ``str``, ``int``, ``float``, ``bool``, ``size`` (bytes, with
    units like ``10MiB``), ``duration`` (seconds, with ``ms``/``s``/``m``/``h``), ``any`` (any
    JSON scalar)."""

    type: str
    doc: str = ""
    choices: tuple[str, ...] = ()
    minimum: float | None = None
    maximum: float | None = None
    check: Callable[[Any], str | None] | None = None

    def convert(self, node: yaml.Node, path: str, ctx: Checker) -> Any:
        ctx.mark(path, node)
        if not isinstance(node, yaml.ScalarNode):
            ctx.problem(path, node, f"expected {self._expected()}, found {_kind(node)}")
            return None
        text = ctx.scalar_text(node, path)
        if text is None:
            return None
        value, error = _CONVERTERS[self.type](_resolve(text, node), text)
        if error is None:
            error = self._check_value(value)
        if error is not None:
            ctx.problem(path, node, error)
            return None
        return value

    def _check_value(self, value: Any) -> str | None:
        if self.choices and value not in self.choices:
            close = difflib.get_close_matches(str(value), self.choices, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            return f"expected one of {', '.join(self.choices)}, found {value!r}{hint}"
        if self.minimum is not None and value < self.minimum:
            return f"must be at least {self.minimum:g}"
        if self.maximum is not None and value > self.maximum:
            return f"must be at most {self.maximum:g}"
        return self.check(value) if self.check else None

    def _expected(self) -> str:
        return {
            "str": "a string",
            "int": "an integer",
            "float": "a number",
            "bool": "true or false",
            "any": "a string, number, boolean or null",
        }.get(self.type, f"a {self.type}")

    def json_schema(self) -> dict[str, Any]:
        if self.type in _TEXT_FORMS:
            native: dict[str, Any] = {"type": _JSON_NATIVE[self.type]}
            if self.minimum is not None:
                native["minimum"] = self.minimum
            if self.maximum is not None:
                native["maximum"] = self.maximum
            # The loader also takes the type's text form (typical of ${VAR} values).
            text = {"type": "string", "pattern": f"{_TEXT_FORMS[self.type]}|{INTERPOLATION}"}
            schema: dict[str, Any] = {"anyOf": [native, text]}
        elif self.choices:
            schema = {"anyOf": [{"enum": list(self.choices)}, INTERPOLATED]}
        elif self.type == "str":
            # Numbers become their text; null (often an empty ${VAR:-}) means "not set".
            schema = {"type": ["string", "number", "null"]}
        else:
            schema = {"type": ["string", "number", "boolean", "null"]}
        if self.doc:
            schema["description"] = self.doc
        return schema


# JSON Schema patterns (ECMA 262) for what the converters below accept as text.
INTERPOLATION = r"\$\{[A-Za-z_][A-Za-z0-9_]*(:-[^}]*)?\}"
INTERPOLATED: dict[str, Any] = {"type": "string", "pattern": INTERPOLATION}
_TEXT_FORMS = {
    "int": r"^\s*[+-]?\d+\s*$",
    "float": r"^\s*[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?\s*$",
    "bool": r"^\s*([Tt]rue|TRUE|[Ff]alse|FALSE|[Yy]es|YES|[Nn]o|NO|[Oo]n|ON|[Oo]ff|OFF)\s*$",
    "size": r"^\s*\d+(\.\d+)?\s*([Bb]|[KkMmGg][Ii]?[Bb])?\s*$",
    "duration": r"^\s*\d+(\.\d+)?\s*(ms|s|m|h)?\s*$",
}
_JSON_NATIVE = {
    "int": "integer",
    "float": "number",
    "bool": "boolean",
    "size": "integer",
    "duration": "number",
}

_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(B|KB|MB|GB|KiB|MiB|GiB)?\s*$", re.IGNORECASE)
_SIZE_UNITS = {
    "b": 1,
    "kb": 10**3,
    "mb": 10**6,
    "gb": 10**9,
    "kib": 2**10,
    "mib": 2**20,
    "gib": 2**30,
}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$")
_DURATION_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def _to_str(value: Any, text: str) -> tuple[Any, str | None]:
    # An empty value (often an unset ${VAR:-}) means "not set"; required keys reject it.
    if value is None:
        return None, None
    return (value if isinstance(value, str) else text), None


_INTEGER = re.compile(r"^[+-]?\d+$")
_NUMBER = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")
_BOOLEANS = {"true": True, "false": False, "yes": True, "no": False, "on": True, "off": False}


def _to_int(value: Any, text: str) -> tuple[Any, str | None]:
    # Quoted numbers (typical of ${ENV} values) are accepted as numbers.
    if isinstance(value, int) and not isinstance(value, bool):
        return value, None
    if isinstance(value, str) and _INTEGER.match(text.strip()):
        return int(text), None
    return None, "expected an integer"


def _to_float(value: Any, text: str) -> tuple[Any, str | None]:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value), None
    if isinstance(value, str) and _NUMBER.match(text.strip()):
        return float(text), None
    return None, "expected a number"


def _to_bool(value: Any, text: str) -> tuple[Any, str | None]:
    if isinstance(value, bool):
        return value, None
    if isinstance(value, str) and text.strip().lower() in _BOOLEANS:
        return _BOOLEANS[text.strip().lower()], None
    return None, "expected true or false"


def _to_size(value: Any, text: str) -> tuple[Any, str | None]:
    if isinstance(value, int) and not isinstance(value, bool):
        return value, None
    match = _SIZE.match(text)
    if not match:
        return None, "expected a size in bytes, like 1048576 or 10MiB"
    number, unit = match.group(1), _SIZE_UNITS[(match.group(2) or "b").lower()]
    if "." not in number:
        # Whole numbers stay integers: float() would drop the low digits of large sizes.
        return int(number) * unit, None
    return int(float(number) * unit), None


def _to_duration(value: Any, text: str) -> tuple[Any, str | None]:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value), None
    match = _DURATION.match(text)
    if not match:
        return None, "expected a duration in seconds, like 5, 2.5s, 500ms, 10m or 72h"
    number, unit = float(match.group(1)), match.group(2) or "s"
    # Milliseconds are divided, not multiplied by 0.001, so 71ms is exactly 0.071.
    return (number / 1000 if unit == "ms" else number * _DURATION_UNITS[unit]), None


def _to_any(value: Any, _text: str) -> tuple[Any, str | None]:
    if isinstance(value, str | int | float | bool) or value is None:
        return value, None
    return None, "expected a string, number, boolean or null"


_CONVERTERS: dict[str, Callable[[Any, str], tuple[Any, str | None]]] = {
    "str": _to_str,
    "int": _to_int,
    "float": _to_float,
    "bool": _to_bool,
    "size": _to_size,
    "duration": _to_duration,
    "any": _to_any,
}


@dataclass
class ListOf(Node):
    """A list; a single scalar is accepted as a list of one when ``single`` is true."""

    item: Node
    doc: str = ""
    single: bool = False
    min_items: int = 0

    def convert(self, node: yaml.Node, path: str, ctx: Checker) -> Any:
        ctx.mark(path, node)
        if isinstance(node, yaml.ScalarNode) and self.single:
            children = [node]
        elif isinstance(node, yaml.SequenceNode):
            children = node.value
        else:
            ctx.problem(path, node, f"expected a list, found {_kind(node)}")
            return None
        if len(children) < self.min_items:
            ctx.problem(path, node, f"needs at least {self.min_items} item(s)")
        converted = (
            self.item.convert(child, f"{path}[{index}]", ctx)
            for index, child in enumerate(children)
        )
        # A broken item is reported and left out, so later checks still see the rest.
        return [item for item in converted if item is not None]

    def json_schema(self) -> dict[str, Any]:
        schema: dict[str, Any] = {"type": "array", "items": self.item.json_schema()}
        if self.single:
            schema = {"anyOf": [schema, self.item.json_schema()]}
        if self.doc:
            schema["description"] = self.doc
        return schema


_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


@dataclass
class MapOf(Node):
    """A mapping from names the admin chooses (``policies``, ``categories``) to values."""

    value: Node
    doc: str = ""

    def convert(self, node: yaml.Node, path: str, ctx: Checker) -> Any:
        ctx.mark(path, node)
        if not isinstance(node, yaml.MappingNode):
            ctx.problem(path, node, f"expected a mapping, found {_kind(node)}")
            return None
        result: dict[str, Any] = {}
        for key_node, value_node in node.value:
            key = str(key_node.value)
            child = _child(path, key)
            if not _NAME.match(key):
                ctx.problem(child, key_node, "names use letters, digits, '_', '-' and '.'")
                continue
            if key in result:
                ctx.problem(child, key_node, f"{key!r} is defined twice")
                continue
            result[key] = self.value.convert(value_node, child, ctx)
        return result

    def json_schema(self) -> dict[str, Any]:
        schema: dict[str, Any] = {
            "type": "object",
            "propertyNames": {"pattern": _NAME.pattern},
            "additionalProperties": self.value.json_schema(),
        }
        if self.doc:
            schema["description"] = self.doc
        return schema


@dataclass
class Field:
    node: Node
    required: bool = False
    default: Any = None


def _has_problem(ctx: Checker, path: str) -> bool:
    return any(problem.path == path for problem in ctx.problems)


def _default(spec: Field) -> Any:
    return spec.default() if callable(spec.default) else spec.default


@dataclass
class Obj(Node):
    """A mapping with known keys. Unknown keys are errors, with a "did you mean"."""

    fields: dict[str, Field]
    doc: str = ""

    def convert(self, node: yaml.Node, path: str, ctx: Checker) -> Any:
        ctx.mark(path, node)
        if not isinstance(node, yaml.MappingNode):
            ctx.problem(path, node, f"expected a mapping, found {_kind(node)}")
            return None
        given = self.convert_keys(node, path, ctx, self.fields)
        return self.fill_defaults(given, node, path, ctx, self.fields)

    def defaults(self) -> dict[str, Any]:
        """The value of this object when the admin leaves it out entirely."""
        return {
            key: spec.node.defaults()
            if isinstance(spec.node, Obj) and spec.default is None
            else _default(spec)
            for key, spec in self.fields.items()
        }

    @staticmethod
    def convert_keys(
        node: yaml.MappingNode, path: str, ctx: Checker, fields: Mapping[str, Field]
    ) -> dict[str, Any]:
        given: dict[str, Any] = {}
        for key_node, value_node in node.value:
            key = str(key_node.value)
            child = _child(path, key)
            spec = fields.get(key)
            if spec is None:
                close = difflib.get_close_matches(key, list(fields), n=1, cutoff=0.6)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                ctx.problem(child, key_node, f"unknown key {key!r}{hint}")
                continue
            if key in given:
                ctx.problem(child, key_node, f"{key!r} is given twice")
                continue
            value = spec.node.convert(value_node, child, ctx)
            if value is None and spec.required and not _has_problem(ctx, child):
                ctx.problem(child, value_node, f"{key!r} needs a value")
            if value is not None:
                given[key] = value
        return given

    @staticmethod
    def fill_defaults(
        given: dict[str, Any], node: yaml.Node, path: str, ctx: Checker, fields: Mapping[str, Field]
    ) -> dict[str, Any] | None:
        """Defaults for keys left out (or broken); ``None`` when a required key is missing,
        so the caller drops the whole object instead of working on half of it."""
        complete = True
        for key, spec in fields.items():
            if key in given:
                continue
            if spec.required:
                complete = False
                if not any(problem.path.startswith(_child(path, key)) for problem in ctx.problems):
                    ctx.problem(path, node, f"missing required key {key!r}")
            given[key] = _default(spec)
        return given if complete else None

    def json_schema(self) -> dict[str, Any]:
        schema: dict[str, Any] = {
            "type": "object",
            "additionalProperties": False,
            "properties": {name: _property_schema(spec) for name, spec in self.fields.items()},
        }
        required = [name for name, spec in self.fields.items() if spec.required]
        if required:
            schema["required"] = required
        if self.doc:
            schema["description"] = self.doc
        return schema


def _property_schema(spec: Field) -> dict[str, Any]:
    schema = spec.node.json_schema()
    # A nested object documents its own defaults, key by key.
    if spec.default is not None and not isinstance(spec.node, Obj):
        schema["default"] = _default(spec)
    return schema


@dataclass
class Tagged(Node):
    """A mapping whose allowed keys depend on one discriminating key (a rule's ``action``).
    ``variant_docs`` says what each value of the tag does (a variant may have no keys of
    its own, so the doc cannot live on its fields)."""

    tag: str
    common: dict[str, Field]
    variants: dict[str, dict[str, Field]]
    doc: str = ""
    variant_docs: dict[str, str] = field(default_factory=dict)

    def convert(self, node: yaml.Node, path: str, ctx: Checker) -> Any:
        ctx.mark(path, node)
        if not isinstance(node, yaml.MappingNode):
            ctx.problem(path, node, f"expected a mapping, found {_kind(node)}")
            return None
        tag_node = next((value for key, value in node.value if key.value == self.tag), None)
        if tag_node is None:
            ctx.problem(path, node, f"missing required key {self.tag!r}")
            return None
        tag = Scalar("str", choices=tuple(self.variants)).convert(
            tag_node, _child(path, self.tag), ctx
        )
        if tag is None:
            return None
        fields = {**self.common, **self.variants[tag]}
        given = Obj.convert_keys(node, path, ctx, fields)
        return Obj.fill_defaults(given, node, path, ctx, fields)

    def json_schema(self) -> dict[str, Any]:
        variants = []
        for tag, extra in self.variants.items():
            fields = {**self.common, **extra}
            schema = Obj(fields, doc=self.variant_docs.get(tag, "")).json_schema()
            schema["properties"][self.tag] = {"const": tag}
            variants.append(schema)
        result: dict[str, Any] = {"oneOf": variants}
        if self.doc:
            result["description"] = self.doc
        return result


def load_yaml_tree(text: str, file: str) -> tuple[yaml.Node | None, Problem | None]:
    """Parse YAML into a node tree (no construction yet), or one syntax problem."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        return None, Problem(
            file, line, column, "", f"invalid YAML: {error.problem or error.context}"
        )
    return node, None

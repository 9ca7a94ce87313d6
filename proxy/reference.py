"""Reference material generated from the code, so it cannot drift from it: the settings
file's JSON Schema, the settings reference and the metrics reference in ``docs/``.

``scripts/gen-docs`` (``python -m proxy.reference docs``) writes them; the tests fail when
the committed copies differ from what the code generates.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prometheus_client.metrics import MetricWrapperBase

import proxy.metrics
from proxy.schema import Field, ListOf, MapOf, Node, Obj, Scalar, Tagged
from proxy.settings import SETTINGS

JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
REGENERATE = "scripts/gen-docs"
_GENERATED_BY = f"Generated from the code by `{REGENERATE}`; do not edit by hand."


def settings_json_schema() -> dict[str, Any]:
    """JSON Schema (draft 2020-12) of the settings file, as YAML loads it: ``${VAR}``
    scalars are accepted wherever the loader would expand them."""
    return {
        "$schema": JSON_SCHEMA_DIALECT,
        "title": "scrubgate settings",
        "description": f"scrubgate's settings file. {_GENERATED_BY}",
        **SETTINGS.json_schema(),
    }


def settings_json_schema_text() -> str:
    return json.dumps(settings_json_schema(), indent=2, ensure_ascii=False) + "\n"


# --- settings reference ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Row:
    key: str
    type: str
    default: str
    allowed: str
    doc: str


@dataclass(frozen=True, slots=True)
class _Section:
    path: str
    doc: str
    rows: tuple[_Row, ...]


_TYPE_NAMES = {
    "str": "string",
    "int": "integer",
    "float": "number",
    "bool": "boolean",
    "size": "size",
    "duration": "duration",
    "any": "string, number, boolean or null",
}


def settings_markdown() -> str:
    """The settings reference: every key with its type, default, allowed values and doc."""
    lines = [
        "# Settings reference",
        "",
        f"<!-- {_GENERATED_BY} -->",
        "",
        "Every key of the settings file (`scrubgate check --config FILE` validates one;",
        "`config.example.yaml` is a commented example). Unknown keys are errors.",
        "",
        "- **size**: bytes, as a number or with a unit: `B`, `KB`, `MB`, `GB`, `KiB`, `MiB`,",
        "  `GiB` (`10MiB`).",
        "- **duration**: seconds, as a number or with a unit: `ms`, `s`, `m` (`500ms`, `2s`).",
        "- Any scalar may be written as `${VAR}` or `${VAR:-default}` (environment variables).",
        "- A *list* marked “or one” also takes a single value instead of a list of one.",
        "- `<name>` stands for a name you choose (letters, digits, `_`, `-`, `.`).",
        "- The JSON Schema of this file is `docs/scrubgate.schema.json` (`scrubgate schema`).",
    ]
    for section in _sections(SETTINGS, "", "Top-level keys."):
        lines += ["", f"## `{section.path}`" if section.path else "## Top level", ""]
        if section.doc:
            lines += [section.doc, ""]
        lines += ["| key | type | default | allowed values | description |"]
        lines += ["|---|---|---|---|---|"]
        lines += [
            f"| `{row.key}` | {row.type} | {row.default} | {row.allowed} | {row.doc} |"
            for row in section.rows
        ]
    return "\n".join(lines) + "\n"


def _sections(node: Node, path: str, doc: str = "") -> Iterator[_Section]:
    """Blocks of keys in reading order: an object's own keys, then its nested objects."""
    if isinstance(node, Obj):
        yield _Section(path, node.doc or doc, _rows(node.fields, path))
        for key, spec in node.fields.items():
            yield from _sections(spec.node, _join(path, key))
    elif isinstance(node, Tagged):
        yield _Section(path, node.doc or doc, _rows(node.common, path))
        for tag, fields in node.variants.items():
            if fields:
                yield _Section(f"{path} ({node.tag}: {tag})", "", _rows(fields, path))
            for key, spec in fields.items():
                yield from _sections(spec.node, _join(path, key))
    elif isinstance(node, ListOf):
        yield from _sections(node.item, f"{path}[]", node.doc)
    elif isinstance(node, MapOf):
        yield from _sections(node.value, f"{path}.<name>", node.doc)


def _rows(fields: dict[str, Field], path: str) -> tuple[_Row, ...]:
    return tuple(
        _Row(
            key=_join(path, key),
            type=_type_text(spec.node, _join(path, key)),
            default=_default_text(spec),
            allowed=_cell(", ".join(f"`{choice}`" for choice in _choices(spec.node))),
            doc=_cell(spec.node.doc),
        )
        for key, spec in fields.items()
    )


def _type_text(node: Node, path: str) -> str:
    if isinstance(node, Scalar):
        return _TYPE_NAMES[node.type] + _range_text(node)
    if isinstance(node, ListOf):
        inner = _type_text(node.item, f"{path}[]")
        return f"list of {inner}" + (" (or one)" if node.single else "")
    if isinstance(node, MapOf):
        return f"mapping of name → {_type_text(node.value, f'{path}.<name>')}"
    return f"object (`{path}`)"


def _range_text(node: Scalar) -> str:
    low, high = node.minimum, node.maximum
    if low is not None and high is not None:
        return f" {low:g} to {high:g}" if low != high else f" = {low:g}"
    if low is not None:
        return f" ≥ {low:g}"
    if high is not None:
        return f" ≤ {high:g}"
    return ""


def _choices(node: Node) -> tuple[str, ...]:
    if isinstance(node, Scalar):
        return node.choices
    if isinstance(node, ListOf):
        return _choices(node.item)
    if isinstance(node, MapOf):
        return _choices(node.value)
    return ()


def _default_text(spec: Field) -> str:
    if spec.required:
        return "**required**"
    if spec.default is None or isinstance(spec.node, Obj):
        return ""
    value = spec.default() if callable(spec.default) else spec.default
    kind = spec.node.type if isinstance(spec.node, Scalar) else ""
    return _cell(f"`{_value_text(value, kind)}`")


def _value_text(value: Any, kind: str) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if kind == "size":
        return _size_text(value)
    if kind == "duration":
        return f"{value:g}s"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_value_text(item, "") for item in value) + "]"
    if isinstance(value, float):
        return f"{value:g}"
    return json.dumps(value, ensure_ascii=False) if value == "" else str(value)


def _size_text(size: int) -> str:
    for unit, factor in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if size and size % factor == 0:
            return f"{size // factor}{unit}"
    return str(size)


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


# --- metrics reference -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MetricDoc:
    """One exported metric as a query names it."""

    name: str
    type: str
    labels: tuple[str, ...]
    help: str


# The name a PromQL query uses for each type's main series.
_SERIES_SUFFIX = {"counter": "_total", "info": "_info"}


def metric_docs() -> list[MetricDoc]:
    """Every metric declared in :mod:`proxy.metrics`, in declaration order."""
    docs = []
    for metric in vars(proxy.metrics).values():
        if not isinstance(metric, MetricWrapperBase):
            continue
        (family,) = metric.describe()
        docs.append(
            MetricDoc(
                name=family.name + _SERIES_SUFFIX.get(family.type, ""),
                type=family.type,
                # prometheus_client keeps a metric's label names only in this attribute.
                labels=tuple(metric._labelnames),
                help=family.documentation,
            )
        )
    return docs


def metrics_markdown() -> str:
    """The metrics reference: name, type, labels and help of every metric."""
    lines = [
        "# Metrics reference",
        "",
        f"<!-- {_GENERATED_BY} -->",
        "",
        "Served on the admin listener's `/metrics` (Prometheus text format). Label values",
        "come only from the settings (route, category, rule ids, detector names) or from fixed",
        "sets, never from payloads. Histograms also export `_bucket`, `_sum` and `_count`",
        "series; info metrics carry their values as labels and have the value 1.",
        "",
        "| metric | type | labels | help |",
        "|---|---|---|---|",
    ]
    for metric in metric_docs():
        labels = ", ".join(f"`{label}`" for label in metric.labels)
        lines.append(f"| `{metric.name}` | {metric.type} | {labels} | {_cell(metric.help)} |")
    return "\n".join(lines) + "\n"


# --- writing docs/ -----------------------------------------------------------------------

GENERATED: dict[str, Callable[[], str]] = {
    "scrubgate.schema.json": settings_json_schema_text,
    "settings.md": settings_markdown,
    "metrics.md": metrics_markdown,
}


def stale_files(directory: Path) -> list[str]:
    """Names of generated files in ``directory`` that are missing or out of date."""
    return [
        name
        for name, generate in GENERATED.items()
        if not (directory / name).is_file()
        or (directory / name).read_text(encoding="utf-8") != generate()
    ]


def write_docs(directory: Path) -> list[str]:
    """Regenerate the files in ``directory``; returns the names that changed."""
    changed = stale_files(directory)
    directory.mkdir(parents=True, exist_ok=True)
    for name in changed:
        (directory / name).write_text(GENERATED[name](), encoding="utf-8")
    return changed


def main(argv: list[str] | None = None) -> int:
    """``python -m proxy.reference DIRECTORY``: write the generated docs there."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m proxy.reference DIRECTORY", file=sys.stderr)
        return 2
    changed = write_docs(Path(args[0]))
    for name in changed:
        print(f"wrote {Path(args[0]) / name}")
    if not changed:
        print(f"{args[0]}: generated docs are up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())

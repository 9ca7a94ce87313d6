"""Reference material generated from the code, so it cannot drift from it: the settings
file's JSON Schema, the settings reference and the metrics reference in ``docs/``.

``scripts/gen-docs`` (``python -m proxy.reference docs``) writes them; the tests fail when
the committed copies differ from what the code generates.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
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
    body = SETTINGS.json_schema()
    del body["description"]
    return {
        "$schema": JSON_SCHEMA_DIALECT,
        "title": "scrubgate settings",
        "description": f"{SETTINGS.doc} {_GENERATED_BY}",
        **body,
    }


def settings_json_schema_text() -> str:
    return json.dumps(settings_json_schema(), indent=2, ensure_ascii=False) + "\n"


# --- settings reference ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ReferenceRow:
    """One key of the settings reference, each cell as Markdown."""

    key: str
    type: str
    default: str
    allowed: str
    doc: str


@dataclass(frozen=True, slots=True)
class ReferenceSection:
    """One block of keys: an object, the items of a list, or the keys one value of a tag
    (a rule's ``action``) adds. ``heading`` is Markdown; ``rows`` may be empty."""

    heading: str
    doc: str
    rows: tuple[ReferenceRow, ...]


_TYPE_NAMES = {
    "str": "string",
    "int": "integer",
    "float": "number",
    "bool": "boolean",
    "size": "size",
    "duration": "duration",
    "any": "string, number, boolean or null",
}

_INTRODUCTION = """\
Every key of the settings file (`scrubgate check --config FILE` validates one;
`config.example.yaml` is a commented example). Unknown keys are errors.

- **size**: bytes, as a number or with a unit: `B`, `KB`, `MB`, `GB`, `KiB`, `MiB`,
  `GiB` (`10MiB`).
- **duration**: seconds, as a number or with a unit: `ms`, `s`, `m`, `h` (`500ms`, `2s`,
  `72h`).
- Any scalar may be written as `${VAR}` or `${VAR:-default}` (environment variables); an
  unset `${VAR}` without a default is an error. Error messages show a value taken from the
  environment as `${VAR}`, never the value itself (it may be a secret).
- A *list* marked “or one” also takes a single value instead of a list of one.
- `<name>` stands for a name you choose (letters, digits, `_`, `-`, `.`).
- **required** keys must be given; *unset* keys have no default and are simply left out
  (their description says what that means).
- Relative file and directory paths are relative to the directory of the settings file.
- A reload (SIGHUP, `POST /-/reload` on the admin listener, or `reload.watch`) applies
  every setting except those described as *read at start*, which take effect at the next
  start.
- The JSON Schema of this file is `docs/scrubgate.schema.json` (`scrubgate schema`)."""


def settings_sections() -> list[ReferenceSection]:
    """The settings reference, block by block, in reading order."""
    return list(_sections(SETTINGS, ""))


def settings_markdown() -> str:
    """The settings reference: every key with its type, default, allowed values and doc."""
    lines = ["# Settings reference", "", f"<!-- {_GENERATED_BY} -->", "", _INTRODUCTION]
    for section in settings_sections():
        lines += ["", f"## {section.heading}", ""]
        if section.doc:
            lines += [section.doc, ""]
        if not section.rows:
            lines += ["No keys of its own besides the common ones above."]
            continue
        lines += ["| key | type | default | allowed values | description |"]
        lines += ["|---|---|---|---|---|"]
        lines += [
            f"| `{row.key}` | {row.type} | {row.default} | {row.allowed} | {row.doc} |"
            for row in section.rows
        ]
    return "\n".join(lines) + "\n"


def _sections(node: Node, path: str, doc: str = "") -> Iterator[ReferenceSection]:
    """Blocks of keys in reading order: an object's own keys, then its nested objects."""
    if isinstance(node, Obj):
        yield ReferenceSection(_heading(path), node.doc or doc, _rows(node.fields, path))
        for key, spec in node.fields.items():
            yield from _sections(spec.node, _join(path, key))
    elif isinstance(node, Tagged):
        yield ReferenceSection(_heading(path), node.doc or doc, _rows(node.common, path))
        for tag, fields in node.variants.items():
            yield ReferenceSection(
                f"`{path}` with `{node.tag}: {tag}`",
                node.variant_docs.get(tag, ""),
                _rows(fields, path),
            )
            for key, spec in fields.items():
                yield from _sections(spec.node, _join(path, key))
    elif isinstance(node, ListOf):
        yield from _sections(node.item, f"{path}[]", node.doc)
    elif isinstance(node, MapOf):
        yield from _sections(node.value, f"{path}.<name>", node.doc)


def _heading(path: str) -> str:
    return f"`{path}`" if path else "Top level"


def _anchor(heading: str) -> str:
    """The anchor GitHub gives a Markdown heading."""
    return re.sub(r"[^a-z0-9 _-]", "", heading.lower()).replace(" ", "-")


def _section_link(path: str) -> str:
    return f"[`{path}`](#{_anchor(_heading(path))})"


def _rows(fields: dict[str, Field], path: str) -> tuple[ReferenceRow, ...]:
    return tuple(
        ReferenceRow(
            key=_join(path, key),
            type=_type_text(spec.node, _join(path, key)),
            default=_default_text(spec),
            allowed=_cell(", ".join(f"`{choice}`" for choice in _choices(spec.node))),
            doc=_cell(_row_doc(spec.node)),
        )
        for key, spec in fields.items()
    )


_SENTENCE_END = re.compile(r"(?<=[a-z0-9)`])\. (?=[A-Z`])")


def _row_doc(node: Node) -> str:
    """A key's description; only its first sentence when the section of its own block
    shows the whole of it."""
    block = node.item if isinstance(node, ListOf) else node
    block = block.value if isinstance(block, MapOf) else block
    if not isinstance(block, Obj | Tagged) or (block is not node and block.doc):
        return node.doc
    sentences = _SENTENCE_END.split(node.doc, maxsplit=1)
    return sentences[0] + ("." if len(sentences) > 1 else "")


def _type_text(node: Node, path: str) -> str:
    if isinstance(node, Scalar):
        if node.type == "any" and node.check is not None:
            return "scalar (see description)"
        return _TYPE_NAMES[node.type] + _range_text(node)
    if isinstance(node, ListOf):
        single = " (or one)" if node.single else ""
        if isinstance(node.item, Obj | Tagged):
            return f"list of objects{single}, see {_section_link(f'{path}[]')}"
        return f"list of {_type_text(node.item, f'{path}[]')}{single}"
    if isinstance(node, MapOf):
        return f"mapping of name → {_type_text(node.value, f'{path}.<name>')}"
    return f"object, see {_section_link(path)}"


def _range_text(node: Scalar) -> str:
    low, high = node.minimum, node.maximum
    if low is not None and high is not None:
        if low == high:
            return f" = {_bound_text(low, node.type)}"
        return f" {_bound_text(low, node.type)} to {_bound_text(high, node.type)}"
    if low is not None:
        return f" ≥ {_bound_text(low, node.type)}"
    if high is not None:
        return f" ≤ {_bound_text(high, node.type)}"
    return ""


def _bound_text(bound: float, kind: str) -> str:
    if kind == "size":
        return _size_text(int(bound))
    if kind == "duration":
        return _duration_text(bound)
    return f"{bound:g}"


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
    if isinstance(spec.node, Obj) and spec.default is not None:
        return ""  # its section lists the default of every key
    if spec.default is None:
        return "*unset*"
    value = spec.default() if callable(spec.default) else spec.default
    kind = spec.node.type if isinstance(spec.node, Scalar) else ""
    return _cell(f"`{_value_text(value, kind)}`")


def _value_text(value: Any, kind: str) -> str:
    """A default as it would be written in the settings file (YAML)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if kind == "size":
        return _size_text(value)
    if kind == "duration":
        return _duration_text(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_value_text(item, "") for item in value) + "]"
    if isinstance(value, dict):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, str) and not _plain_yaml(value):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def _plain_yaml(text: str) -> bool:
    """Whether ``text`` written unquoted in YAML reads back as the same string."""
    try:
        return bool(text) and yaml.safe_load(text) == text
    except yaml.YAMLError:
        return False


def _size_text(size: int) -> str:
    for unit, factor in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if size and size % factor == 0:
            return f"{size // factor}{unit}"
    return f"{size}B"


def _duration_text(seconds: float) -> str:
    for unit, factor in (("h", 3600), ("m", 60)):
        if seconds >= factor and seconds % factor == 0:
            return f"{seconds / factor:g}{unit}"
    if 0 < seconds < 1:
        return f"{seconds * 1000:g}ms"
    return f"{seconds:g}s"


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

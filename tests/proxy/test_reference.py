"""proxy/reference.py: the JSON Schema agrees with the loader, the example validates
against it, and the committed docs/ files are what the code generates."""

import copy
import re
from pathlib import Path

import jsonschema
import pytest
import yaml

from filters.spec import ACTIONS
from proxy.metrics import REGISTRY
from proxy.reference import (
    GENERATED,
    REGENERATE,
    metric_docs,
    metrics_markdown,
    settings_json_schema,
    settings_markdown,
    settings_sections,
    stale_files,
    write_docs,
)
from proxy.settings import SettingsError, parse_settings

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
EXAMPLE = ROOT / "config.example.yaml"
MINIMAL = ROOT / "tests" / "fixtures" / "settings" / "minimal.yaml"
ENVIRON = {"TEST_HASH_KEY": "k" * 32, "PORT": "8080", "ALGORITHM": "xxh3-128"}


def validator() -> jsonschema.Draft202012Validator:
    schema = settings_json_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def schema_errors(document: object) -> list[str]:
    return [f"{error.json_path}: {error.message}" for error in validator().iter_errors(document)]


def test_committed_docs_are_up_to_date():
    stale = stale_files(DOCS)
    assert not stale, (
        f"docs/{', docs/'.join(stale)} differ from what the code generates: "
        f"run {REGENERATE} and commit the result"
    )


def test_config_example_validates_against_the_schema():
    document = yaml.safe_load(EXAMPLE.read_text())
    assert schema_errors(document) == []
    # ${VAR} scalars reach the schema as text, in fields of every kind.
    assert document["listeners"][0]["port"] == "${SCRUBGATE_PORT:-8080}"
    assert document["hashing"]["key_file"] == "${SCRUBGATE_HASH_KEY_FILE:-}"


def test_config_example_points_editors_at_the_schema():
    first_line = EXAMPLE.read_text().splitlines()[0]
    assert first_line == "# yaml-language-server: $schema=./docs/scrubgate.schema.json"
    assert (EXAMPLE.parent / "docs" / "scrubgate.schema.json").is_file()


def _set(document: dict, path: tuple, value: object) -> None:
    for key in path[:-1]:
        document = document[key]
    document[path[-1]] = value


# (path, the value as written in YAML, valid?): the loader and the schema agree on each.
AGREEMENT = [
    (("listeners", 0, "port"), "8080", True),
    (("listeners", 0, "port"), "'8080'", True),
    (("listeners", 0, "port"), "${PORT}", True),
    (("listeners", 0, "port"), "70000", False),
    (("listeners", 0, "port"), "-1", False),
    (("listeners", 0, "port"), "eighty", False),
    (("listeners", 0, "port"), "[8080]", False),
    (("limits",), "{max_body_bytes: 10MiB}", True),
    (("limits",), "{max_body_bytes: 1.5kb}", True),
    (("limits",), "{max_body_bytes: 4096}", True),
    (("limits",), "{max_body_bytes: 0}", False),
    (("limits",), "{max_body_bytes: ten megabytes}", False),
    (("limits",), "{max_bodybytes: 10MiB}", False),
    (("reload",), "{interval: 500ms}", True),
    (("reload",), "{interval: 2}", True),
    (("reload",), "{interval: 0.01}", False),
    (("reload",), "{interval: 2h}", True),
    (("reload",), "{interval: 2d}", False),
    (("reload",), "{watch: true}", True),
    (("reload",), "{watch: 'yes'}", True),
    (("reload",), "{watch: maybe}", False),
    (("hashing", "algorithm"), "xxh3-128", True),
    (("hashing", "algorithm"), "${ALGORITHM}", True),
    (("hashing", "algorithm"), "md5", False),
    (("routes", 0, "format"), "ndjson", True),
    (("routes", 0, "format"), "xml", False),
    (("routes", 0, "drop_response"), "{status: 204}", True),
    (("routes", 0, "drop_response"), "{status: 404}", False),
    (("routes", 0, "match"), "{methods: POST}", True),
    (("routes", 0, "match"), "{methods: {POST: true}}", False),
    (("categories",), "{clickstream: drop}", True),
    (("categories",), "{clickstream: off}", False),
    (("categories",), "{'bad name': drop}", False),
    (("policies", "default", "rules", 0), "{id: m, action: mask, keep_last: 2}", True),
    (("policies", "default", "rules", 0), "{id: m, action: mask, max_length: 2}", False),
    (("policies", "default", "rules", 0), "{id: s, action: sample, rate: 0.5}", True),
    (("policies", "default", "rules", 0), "{id: s, action: sample, rate: 2}", False),
    (("policies", "default", "rules", 0), "{id: s, action: explode}", False),
]


@pytest.mark.parametrize(("path", "written", "valid"), AGREEMENT, ids=str)
def test_schema_accepts_exactly_what_the_loader_accepts(path, written, valid):
    document = copy.deepcopy(yaml.safe_load(MINIMAL.read_text()))
    _set(document, path, yaml.safe_load(f"value: {written}")["value"])
    try:
        parse_settings(yaml.safe_dump(document), "case.yaml", ENVIRON)
        loader_problems: list[str] = []
    except SettingsError as error:
        loader_problems = [problem.message for problem in error.problems]
    errors = schema_errors(document)
    assert (not loader_problems) is valid, loader_problems
    assert (not errors) is valid, errors


def test_settings_reference_lists_every_key_with_type_default_and_choices():
    text = settings_markdown()
    assert "| `limits.max_body_bytes` | size ≥ 1B | `10MiB` |" in text
    assert "| `listeners[].port` | integer 0 to 65535 | **required** |" in text
    assert "| `reload.interval` | duration ≥ 50ms | `2s` |" in text
    assert "| `spool.max_age` | duration ≥ 1s | `72h` |" in text
    assert "| `admin.token_file` | string | *unset* |" in text
    assert "| `hashing.algorithm` | string | `hmac-sha256` | `hmac-sha256`, `xxh3-128` |" in text
    assert "## `policies.<name>.rules[]` with `action: mask`" in text
    assert "| `policies.<name>.rules[].keep_last` | integer ≥ 0 | `4` |" in text
    assert "## `policies.<name>.rules[].patterns[]`" in text
    for key in settings_json_schema()["properties"]:
        assert f"| `{key}` |" in text, key


def test_settings_reference_writes_defaults_as_yaml_reads_them():
    text = settings_markdown()
    # Unquoted, these would read as an alias, a mapping and null.
    assert '| `policies.<name>.rules[].select` | list of string (or one) | `["**"]` |' in text
    assert '| `routes[].drop_response.body` | string | `"{}"` |' in text
    assert '| `hashing.prefix` | string | `""` |' in text
    assert "| `routes[].headers.user_agent` | string | `generalize` |" in text


def test_settings_reference_links_every_nested_block_to_its_section():
    text = settings_markdown()
    headings = {line.removeprefix("## ") for line in text.splitlines() if line.startswith("## ")}
    anchors = {
        re.sub(r"[^a-z0-9 _-]", "", heading.lower()).replace(" ", "-") for heading in headings
    }
    links = re.findall(r"\]\(#([^)]+)\)", text)
    assert "policiesnamerules" in links and "listenerstls" in links
    assert set(links) <= anchors


def test_every_action_has_a_section_even_without_keys_of_its_own():
    headings = [section.heading for section in settings_sections()]
    for action in ACTIONS:
        assert f"`policies.<name>.rules[]` with `action: {action}`" in headings, action


def test_every_setting_and_section_of_the_reference_is_described():
    """A new setting must come with its doc string (Scalar/ListOf/MapOf/Obj ``doc=``)."""
    sections = settings_sections()
    undescribed = [row.key for section in sections for row in section.rows if not row.doc.strip()]
    assert not undescribed, f"settings without a description in proxy/settings.py: {undescribed}"
    bare = [section.heading for section in sections if not section.doc.strip()]
    assert not bare, f"sections without a description in proxy/settings.py: {bare}"


def _undescribed_properties(schema: object) -> list[str]:
    """Names of properties, anywhere in ``schema``, that have no description (a rule
    variant's ``action: {const: ...}`` needs none)."""
    if isinstance(schema, list):
        return [name for item in schema for name in _undescribed_properties(item)]
    if not isinstance(schema, dict):
        return []
    found = [
        name
        for name, prop in schema.get("properties", {}).items()
        if "description" not in prop and "const" not in prop
    ]
    return found + [name for value in schema.values() for name in _undescribed_properties(value)]


def test_every_property_of_the_json_schema_is_described_for_editors():
    assert _undescribed_properties(settings_json_schema()) == []


def test_metrics_reference_lists_every_registered_metric():
    documented = {metric.name for metric in metric_docs()}
    suffix = {"counter": "_total", "info": "_info"}
    registered = {family.name + suffix.get(family.type, "") for family in REGISTRY.collect()}
    assert documented == registered
    text = metrics_markdown()
    assert (
        "| `scrubgate_requests_total` | counter | `route`, `category`, `verdict` | Requests handled"
        in text
    )
    assert "| `scrubgate_in_flight_requests` | gauge |  |" in text


def test_write_docs_writes_only_what_changed(tmp_path):
    assert sorted(write_docs(tmp_path)) == sorted(GENERATED)
    assert write_docs(tmp_path) == []
    (tmp_path / "metrics.md").write_text("old\n")
    assert stale_files(tmp_path) == ["metrics.md"]
    assert write_docs(tmp_path) == ["metrics.md"]
    assert (tmp_path / "metrics.md").read_text() == metrics_markdown()

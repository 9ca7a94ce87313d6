"""proxy/settings.py: loading is compilation; every problem has a file:line:col and a path.

Each file in tests/fixtures/settings/invalid/ is one case: its ``# expect:`` comments list
the problems (``LINE:COL: path: message prefix``) loading must report, and no others.
"""

import os
import re
from pathlib import Path

import pytest
import trustme

from filters.detectors.registry import BUILTIN_NAMES
from proxy.settings import SettingsError, cpu_count, load_settings

FIXTURES = Path(__file__).parent.parent / "fixtures" / "settings"
INVALID = sorted((FIXTURES / "invalid").glob("*.yaml"))
EXAMPLE = Path(__file__).parent.parent.parent / "config.example.yaml"
KEY = {"TEST_HASH_KEY": "k" * 32, "SCRUBGATE_HASH_KEY": "k" * 32}


def _expected(path: Path) -> list[str]:
    return [match.group(1) for match in re.finditer(r"# expect: (.+)", path.read_text())]


@pytest.mark.parametrize("case", INVALID, ids=lambda path: path.stem)
def test_invalid_settings_report_every_problem_with_its_place(case):
    with pytest.raises(SettingsError) as caught:
        load_settings(case, environ=KEY)
    reported = [str(problem) for problem in caught.value.problems]
    expected = _expected(case)
    assert expected, "a fixture must say what it expects"
    for line in expected:
        assert any(problem.startswith(f"{case}:{line}") for problem in reported), (line, reported)
    assert len(reported) == len(expected), reported


def test_minimal_settings_compile_to_plans():
    settings = load_settings(FIXTURES / "minimal.yaml", environ=KEY)
    route = settings.route("analytics")
    assert route is not None and route.mode == "scrub" and route.plan is settings.plans["default"]
    assert settings.listeners[0].port == 0
    assert settings.limits.max_body_bytes == 10 * 2**20
    assert settings.summary() == (
        f"{FIXTURES / 'minimal.yaml'}: OK — 1 listener(s), 1 route(s), 1 policy with 2 rule(s), "
        "1 worker (auto)"
    )


def test_summary_names_the_workers_the_forward_proxy_and_the_spool(tmp_path):
    text = (FIXTURES / "minimal.yaml").read_text().replace("    port: 0\n", "    port: 8080\n")
    text += (
        "workers: 3\n"
        "spool:\n  directory: spool\n"
        "forward_proxy:\n"
        "  listener: main\n"
        "  destinations:\n"
        "    - {destination: '*.sentry.io', action: tunnel}\n"
        "    - {destination: 'updates.vendor.example:8443', action: tunnel}\n"
    )
    path = tmp_path / "settings.yaml"
    path.write_text(text)
    assert load_settings(path, environ=KEY).summary() == (
        f"{path}: OK — 1 listener(s), 1 route(s), 1 policy with 2 rule(s), 3 workers, "
        f"forward proxy on listener 'main' with 2 CONNECT destination(s), "
        f"spool in {tmp_path / 'spool'}"
    )


def test_example_settings_are_valid_and_complete():
    settings = load_settings(EXAMPLE, environ=KEY)
    feedback = settings.route("feedback")
    assert feedback is not None and feedback.category == "feedback" and feedback.format == "json"
    assert {route.mode for route in settings.routes} == {"scrub", "block"}
    assert settings.categories["clickstream"] == "scrub"


def test_example_feedback_route_runs_every_builtin_detector_over_every_string():
    settings = load_settings(EXAMPLE, environ=KEY)
    plan = settings.route("feedback").plan
    assert set(plan._sweep.rule_of_detector) >= set(BUILTIN_NAMES)


@pytest.mark.parametrize("field", ["url", "image_url", "avatarUrl", "CALLBACK_URL", "redirect_uri"])
@pytest.mark.parametrize("route", ["analytics", "feedback"])
def test_example_policies_keep_only_allowlisted_parameters_in_every_url_field(route, field):
    """Parameters no detector knows (a Google signature, a user name, an OAuth state) leave
    no URL-named field; the allowlisted ones stay in the analytics policy."""
    plan = load_settings(EXAMPLE, environ=KEY).route(route).plan
    url = "https://cdn.example.com/img/a.jpg?w=640&user=jane7&X-Goog-Signature=c0ffee42&state=q9z"
    document = {"properties": {field: url + "&utm_source=news#frag"}, "urls": ["kept as is"]}
    scrubbed = plan.scrub(document, None).value
    kept = "?utm_source=news" if route == "analytics" else ""
    assert scrubbed["properties"][field] == "https://cdn.example.com/img/a.jpg" + kept
    assert scrubbed["urls"] == ["kept as is"]


def test_environment_interpolation_with_defaults(tmp_path):
    text = (
        (FIXTURES / "minimal.yaml")
        .read_text()
        .replace("    port: 0\n", "    port: ${PORT:-8181}\n", 1)
    )
    path = tmp_path / "settings.yaml"
    path.write_text(text)
    assert load_settings(path, environ=KEY).listeners[0].port == 8181
    assert load_settings(path, environ={**KEY, "PORT": "9191"}).listeners[0].port == 9191


def test_problems_never_show_values_taken_from_the_environment(tmp_path):
    # An environment variable may hold a secret, and settings errors are printed and
    # logged: a bad value from ${VAR} is named after the variable, never shown.
    secret = "s3cr3t-Value'with\\quote"
    text = (
        (FIXTURES / "minimal.yaml")
        .read_text()
        .replace("category: analytics", "category: analytics\n    mode: ${MODE}")
        .replace("policy: default", "policy: ${POLICY}")
    )
    path = tmp_path / "settings.yaml"
    path.write_text(text)
    with pytest.raises(SettingsError) as caught:
        load_settings(path, environ={**KEY, "MODE": secret, "POLICY": "hunter2-policy"})
    message = str(caught.value)
    assert "s3cr3t" not in message
    assert "hunter2" not in message
    assert 'routes[0].mode: expected one of forward, scrub, drop, block, found "${MODE}"' in message
    assert "routes[0].policy: unknown policy '${POLICY}'" in message


def test_problems_show_defaults_and_short_environment_values(tmp_path):
    # A default is written in the file itself; a value of a few characters is no secret
    # and would only garble messages if hidden.
    text = (FIXTURES / "minimal.yaml").read_text().replace("policy: default", "policy: ${P:-nope}")
    path = tmp_path / "settings.yaml"
    path.write_text(text)
    with pytest.raises(SettingsError, match="unknown policy 'nope'"):
        load_settings(path, environ=KEY)
    with pytest.raises(SettingsError, match="unknown policy 'abc'"):
        load_settings(path, environ={**KEY, "P": "abc"})


def test_sizes_and_durations_accept_units(tmp_path):
    text = (
        FIXTURES / "minimal.yaml"
    ).read_text() + "limits:\n  max_body_bytes: 2MiB\n  upstream_timeout: 250ms\n"
    path = tmp_path / "settings.yaml"
    path.write_text(text)
    limits = load_settings(path, environ=KEY).limits
    assert limits.max_body_bytes == 2 * 2**20
    assert limits.upstream_timeout == pytest.approx(0.25)


def test_hash_key_is_read_from_a_file_and_never_shown(tmp_path):
    (tmp_path / "key").write_text("s3cr3t-key-material-0123456789\n")
    text = (
        (FIXTURES / "minimal.yaml").read_text().replace("key_env: TEST_HASH_KEY", "key_file: key")
    )
    path = tmp_path / "settings.yaml"
    path.write_text(text)
    settings = load_settings(path, environ={})
    assert settings.engine.spec.hashing.key == b"s3cr3t-key-material-0123456789"
    assert "s3cr3t" not in repr(settings.engine.spec.hashing)


@pytest.mark.parametrize(
    ("written", "key"),
    [
        ("hex:" + "00ff" * 8, bytes.fromhex("00ff" * 8)),
        ("hex: 00ff 00ff 00ff 00ff 00ff 00ff 00ff 00ff", bytes.fromhex("00ff" * 8)),
        ("plain-key-material-0123", b"plain-key-material-0123"),
    ],
)
def test_hex_keys_are_decoded(tmp_path, written, key):
    path = tmp_path / "settings.yaml"
    path.write_text((FIXTURES / "minimal.yaml").read_text())
    settings = load_settings(path, environ={"TEST_HASH_KEY": written})
    assert settings.engine.spec.hashing.key == key


def test_a_bad_hex_key_is_a_problem_that_never_shows_the_key(tmp_path):
    path = tmp_path / "settings.yaml"
    path.write_text((FIXTURES / "minimal.yaml").read_text())
    with pytest.raises(SettingsError) as caught:
        load_settings(path, environ={"TEST_HASH_KEY": "hex:SECRETzz" + "0" * 30})
    assert "not valid hexadecimal" in str(caught.value)
    assert "SECRET" not in str(caught.value)


def test_unreadable_file_is_one_clear_problem(tmp_path):
    with pytest.raises(SettingsError) as caught:
        load_settings(tmp_path / "missing.yaml")
    assert "cannot read settings file" in str(caught.value)


def test_category_mode_override_per_route(tmp_path):
    text = (FIXTURES / "minimal.yaml").read_text() + "categories:\n  analytics: drop\n"
    path = tmp_path / "settings.yaml"
    path.write_text(text)
    assert load_settings(path, environ=KEY).route("analytics").mode == "drop"


def test_forward_proxy_settings_load_with_the_ca(tmp_path):
    ca = trustme.CA()
    ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    ca.private_key_pem.write_to_path(str(tmp_path / "ca.key"))
    text = (FIXTURES / "minimal.yaml").read_text() + (
        "forward_proxy:\n"
        "  listener: main\n"
        "  ca_cert_file: ca.pem\n"
        "  ca_key_file: ca.key\n"
        "  destinations:\n"
        "    - {destination: Telemetry.Vendor.Example, action: intercept}\n"
        '    - {destination: "*.sentry.io:8443", action: tunnel}\n'
        '    - {destination: "[::1]:443", action: tunnel}\n'
    )
    path = tmp_path / "settings.yaml"
    path.write_text(text)
    forward = load_settings(path, environ=KEY).forward_proxy
    assert forward is not None and forward.listener == "main"
    assert [(d.label, d.action) for d in forward.destinations] == [
        ("telemetry.vendor.example:443", "intercept"),
        ("*.sentry.io:8443", "tunnel"),
        ("[::1]:443", "tunnel"),
    ]
    assert forward.authority is not None
    assert forward.authority.certificate_pem == ca.cert_pem.bytes()
    assert (forward.max_tunnels, forward.idle_timeout) == (1024, 300.0)


def test_forward_proxy_is_off_by_default():
    assert load_settings(FIXTURES / "minimal.yaml", environ=KEY).forward_proxy is None
    assert load_settings(EXAMPLE, environ=KEY).forward_proxy is None


def test_a_forward_proxy_ca_that_is_not_a_ca_is_reported_with_its_place(tmp_path):
    leaf = trustme.CA().issue_cert("proxy.test")
    leaf.cert_chain_pems[0].write_to_path(str(tmp_path / "leaf.pem"))
    leaf.private_key_pem.write_to_path(str(tmp_path / "leaf.key"))
    path = tmp_path / "settings.yaml"
    path.write_text(
        (FIXTURES / "minimal.yaml").read_text()
        + "forward_proxy:\n  listener: main\n  ca_cert_file: leaf.pem\n  ca_key_file: leaf.key\n"
    )
    with pytest.raises(SettingsError) as caught:
        load_settings(path, environ=KEY)
    (problem,) = caught.value.problems
    assert str(problem).startswith(f"{path}:24:17: forward_proxy.ca_cert_file: ")
    assert "is not a CA certificate" in problem.message


@pytest.mark.parametrize(
    ("given", "port", "workers"),
    [
        (None, 0, 1),
        ("auto", 0, 1),
        (None, 8080, cpu_count()),
        ("auto", 8080, cpu_count()),
        ("3", 8080, 3),
        ("1", 0, 1),
        ("${WORKERS:-2}", 8080, 2),
    ],
)
def test_workers_auto_is_one_per_cpu_or_one_on_an_ephemeral_port(tmp_path, given, port, workers):
    text = (
        (FIXTURES / "minimal.yaml").read_text().replace("    port: 0\n", f"    port: {port}\n", 1)
    )
    if given is not None:
        text += f"workers: {given}\n"
    path = tmp_path / "settings.yaml"
    path.write_text(text)
    assert load_settings(path, environ=KEY).workers == workers
    assert load_settings(path, environ={**KEY, "WORKERS": "4"}).workers == (
        4 if given and "WORKERS" in given else workers
    )


def test_cpu_count_follows_the_affinity_mask():
    assert cpu_count() == len(os.sched_getaffinity(0)) >= 1


@pytest.mark.parametrize(("given", "entries"), [(None, 2048), (0, 0), (16, 16)])
def test_transform_memo_size_reaches_the_engine(tmp_path, given, entries):
    text = (FIXTURES / "minimal.yaml").read_text()
    if given is not None:
        text += f"limits: {{transform_memo_entries: {given}}}\n"
    path = tmp_path / "settings.yaml"
    path.write_text(text)
    assert load_settings(path, environ=KEY).engine.spec.limits.memo_entries == entries


@pytest.mark.parametrize(
    "upstream", ["http://[x]/", "http://127.0.0.1:99999", "http://127.0.0.1:port", "http://h:0"]
)
def test_bad_upstream_hosts_and_ports_are_problems_not_crashes(tmp_path, upstream):
    text = (FIXTURES / "minimal.yaml").read_text()
    path = tmp_path / "settings.yaml"
    path.write_text(re.sub(r"upstream: \S+", f'upstream: "{upstream}"', text, count=1))
    with pytest.raises(SettingsError) as caught:
        load_settings(path, environ=KEY)
    assert "expected an http:// or https:// URL" in str(caught.value)


def test_a_hash_key_too_short_is_one_clear_problem(tmp_path):
    path = tmp_path / "settings.yaml"
    path.write_text((FIXTURES / "minimal.yaml").read_text())
    with pytest.raises(SettingsError) as caught:
        load_settings(path, environ={"TEST_HASH_KEY": "short"})
    messages = str(caught.value)
    assert "at least 16 bytes" in messages
    assert "is not set" not in messages

"""proxy/cli.py: check, scrub (with --explain), schema, version — run as a real subprocess."""

import gzip
import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import jsonschema
import orjson
import pytest

from proxy import cli
from proxy.build import StaleBuildError
from proxy.settings import cpu_count

ROOT = Path(__file__).resolve().parent.parent.parent
EXAMPLE = ROOT / "config.example.yaml"
FEEDBACK = ROOT / "tests" / "fixtures" / "cli" / "feedback.json"
INVALID = ROOT / "tests" / "fixtures" / "settings" / "invalid" / "unknown_names.yaml"
ENV = {**os.environ, "SCRUBGATE_HASH_KEY": "cli-test-key-0123456789abcdef", "PYTHONPATH": str(ROOT)}


def scrubgate(
    *args: str, stdin: bytes | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "proxy.cli", *args],
        input=stdin,
        capture_output=True,
        env={**ENV, **(env or {})},
        timeout=120,
        check=False,
    )


def test_a_stale_compiled_engine_is_refused_before_any_command(monkeypatch, capsys):
    def stale() -> None:
        raise StaleBuildError("filters.walker: the source changed after it was compiled")

    monkeypatch.setattr(cli, "check_fresh", stale)
    assert cli.main(["check", "--config", str(EXAMPLE)]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == "scrubgate: filters.walker: the source changed after it was compiled\n"


def test_check_valid_file_prints_one_line_summary():
    result = scrubgate("check", "--config", str(EXAMPLE))
    assert result.returncode == 0, result.stderr
    workers = cpu_count()
    assert result.stdout.decode().splitlines() == [
        f"{EXAMPLE}: OK — 1 listener(s), 6 route(s), 4 policies with 22 rule(s), "
        f"{workers} worker{'' if workers == 1 else 's'} (auto)"
    ]


def test_check_summary_names_the_forward_proxy_and_the_spool(tmp_path):
    settings = tmp_path / "settings.yaml"
    settings.write_text(
        EXAMPLE.read_text() + "forward_proxy:\n"
        "  listener: main\n"
        "  destinations: [{destination: '*.sentry.io', action: tunnel}]\n"
    )
    result = scrubgate(
        "check",
        "--config",
        str(settings),
        env={"SCRUBGATE_WORKERS": "2", "SCRUBGATE_SPOOL_DIR": "/var/lib/scrubgate/spool"},
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.decode().splitlines() == [
        f"{settings}: OK — 1 listener(s), 6 route(s), 4 policies with 22 rule(s), 2 workers, "
        "forward proxy on listener 'main' with 1 CONNECT destination(s), "
        "spool in /var/lib/scrubgate/spool"
    ]


def test_check_invalid_file_lists_every_problem():
    result = scrubgate("check", "--config", str(INVALID))
    assert result.returncode == 1
    errors = result.stderr.decode().splitlines()
    assert (
        sum(re.match(rf"{re.escape(str(INVALID))}:\d+:\d+: ", line) is not None for line in errors)
        == 4
    )
    assert any("did you mean 'default'" in line for line in errors)


def test_scrub_prints_exactly_what_would_be_forwarded():
    result = scrubgate("scrub", "--config", str(EXAMPLE), "--route", "feedback", str(FEEDBACK))
    assert result.returncode == 0, result.stderr
    sent = orjson.loads(result.stdout)
    assert sent["comment"] == "reach me at [email] or [phone]"
    assert sent["userId"] != "u-77"
    assert sent["page"] == "https://app.example.com/settings"
    assert sent["rating"] == 4


def test_scrub_reads_stdin_and_keeps_the_encoding():
    body = gzip.compress(FEEDBACK.read_bytes())
    result = scrubgate(
        "scrub",
        "--config",
        str(EXAMPLE),
        "--route",
        "feedback",
        "--content-encoding",
        "gzip",
        "-",
        stdin=body,
    )
    assert result.returncode == 0, result.stderr
    assert b"[email]" in gzip.decompress(result.stdout)


def test_explain_names_rules_paths_and_counts_never_values():
    result = scrubgate(
        "scrub", "--config", str(EXAMPLE), "--route", "feedback", "--explain", str(FEEDBACK)
    )
    explanation = result.stderr.decode()
    assert "hash-identifiers\tuserId\t1" in explanation
    assert "redact-all-detectors\tcomment\t1" in explanation
    assert "detector email\t1" in explanation
    for secret in ("jane.doe", "example.com", "202-555", "u-77", "203.0.113"):
        assert secret not in explanation


def test_scrub_unparseable_input_is_a_clear_error():
    result = scrubgate(
        "scrub", "--config", str(EXAMPLE), "--route", "feedback", "-", stdin=b'{"broken": '
    )
    assert result.returncode == 1
    message = result.stderr.decode()
    assert "cannot scrub the input" in message and "broken" not in message


def test_scrub_unknown_route():
    result = scrubgate("scrub", "--config", str(EXAMPLE), "--route", "nope", str(FEEDBACK))
    assert result.returncode == 1
    assert "unknown route 'nope'" in result.stderr.decode()


@pytest.mark.parametrize(("route", "message"), [("internal", "mode block: nothing would be sent")])
def test_scrub_on_block_route_sends_nothing(route, message):
    result = scrubgate("scrub", "--config", str(EXAMPLE), "--route", route, str(FEEDBACK))
    assert result.returncode == 0 and result.stdout == b""
    assert message in result.stderr.decode()


def test_schema_prints_the_committed_draft_2020_12_schema():
    result = scrubgate("schema")
    assert result.returncode == 0, result.stderr
    schema = orjson.loads(result.stdout)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    jsonschema.Draft202012Validator.check_schema(schema)
    assert set(schema["required"]) == {"version", "listeners", "routes"}
    assert result.stdout.decode() == (ROOT / "docs" / "scrubgate.schema.json").read_text()


def test_version():
    result = scrubgate("version")
    assert result.returncode == 0 and result.stdout.startswith(b"scrubgate ")


def test_demo_once_shows_before_and_after(tmp_path):
    text = (
        EXAMPLE.read_text()
        .replace("${SCRUBGATE_PORT:-8080}", "0")
        .replace("${SCRUBGATE_ADMIN_PORT:-9090}", "0")
    )
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        sink_port = probe.getsockname()[1]
    text = text.replace(
        "${SCRUBGATE_UPSTREAM:-http://127.0.0.1:9999}", f"http://127.0.0.1:{sink_port}"
    )
    config = tmp_path / "demo.yaml"
    config.write_text(text)
    result = scrubgate("demo", "--config", str(config), "--once")
    output = result.stdout.decode()
    assert result.returncode == 0, result.stderr
    assert "sent by the product" in output and "arrived at the vendor" in output
    after = output.split("arrived at the vendor", 1)[1]
    assert "[email]" in after


def test_run_refuses_a_spool_another_process_holds(tmp_path):
    from proxy.spool import SpoolStore

    holder = SpoolStore(tmp_path / "spool", worker=0, fsync=False)
    holder.open()
    config = tmp_path / "settings.yaml"
    config.write_text(
        "version: 1\n"
        "listeners: [{name: main, port: 0}]\n"
        "admin: {port: 0}\n"
        "spool: {directory: spool}\n"
        "routes: [{name: r, upstream: 'http://127.0.0.1:9', category: traces, mode: forward}]\n"
    )
    result = scrubgate("run", "--config", str(config))
    holder.close()
    assert result.returncode == 1
    assert b"cannot start: spool directory" in result.stderr
    assert b"in use by another process" in result.stderr


def test_run_reports_a_port_in_use(tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        config = tmp_path / "settings.yaml"
        config.write_text(
            "version: 1\n"
            f"listeners: [{{name: main, port: {busy.getsockname()[1]}}}]\n"
            "admin: {port: 0}\n"
            "routes: [{name: r, upstream: 'http://127.0.0.1:9', category: traces, mode: forward}]\n"
        )
        result = scrubgate("run", "--config", str(config))
    assert result.returncode == 1
    assert b"cannot start:" in result.stderr
    assert b"address already in use" in result.stderr.lower()

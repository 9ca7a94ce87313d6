"""deploy/systemd/scrubgate.service: a well-formed, hardened unit whose environment fits
config.example.yaml; checked with systemd-analyze where it exists."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest

from proxy.settings import load_settings
from tests.deploy.support import DEPLOY, REPO

UNIT = DEPLOY / "systemd" / "scrubgate.service"
INSTALL_PREFIX = "/opt/scrubgate"
_ENTRY = re.compile(r"^([A-Za-z][A-Za-z0-9]*)=(.*)$")


def parse_unit(text: str) -> dict[str, list[tuple[str, str]]]:
    """Sections → (key, value) in order; keys may repeat, as systemd allows."""
    sections: dict[str, list[tuple[str, str]]] = {}
    current = None
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith(("#", ";")):
            continue
        if stripped.startswith("[") and stripped.endswith("]"):
            current = stripped[1:-1]
            assert current not in sections, f"line {number}: section [{current}] twice"
            sections[current] = []
            continue
        entry = _ENTRY.match(stripped)
        assert entry and current, f"line {number}: not a key=value in a section: {line!r}"
        sections[current].append((entry.group(1), entry.group(2)))
    return sections


def service() -> dict[str, list[str]]:
    values: dict[str, list[str]] = {}
    for key, value in parse_unit(UNIT.read_text())["Service"]:
        values.setdefault(key, []).append(value)
    return values


def test_unit_has_the_three_sections():
    sections = parse_unit(UNIT.read_text())
    assert list(sections) == ["Unit", "Service", "Install"]
    assert ("WantedBy", "multi-user.target") in sections["Install"]
    assert ("After", "network-online.target") in sections["Unit"]


def test_runs_the_settings_file_and_reloads_with_sighup():
    unit = service()
    assert unit["ExecStart"] == [
        f"{INSTALL_PREFIX}/bin/scrubgate run --config /etc/scrubgate/config.yaml --log-format json"
    ]
    assert unit["ExecReload"] == ["/bin/kill -HUP $MAINPID"]
    assert unit["Restart"] == ["on-failure"]


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("DynamicUser", "yes"),
        ("ProtectSystem", "strict"),
        ("ProtectHome", "yes"),
        ("PrivateTmp", "yes"),
        ("PrivateDevices", "yes"),
        ("NoNewPrivileges", "yes"),
        ("CapabilityBoundingSet", ""),
        ("RestrictAddressFamilies", "AF_INET AF_INET6 AF_UNIX"),
        ("SystemCallFilter", "@system-service"),
        ("UMask", "0077"),
    ],
)
def test_hardening(key, value):
    assert value in service()[key]


def test_spool_is_a_state_directory_and_the_hash_key_a_credential():
    unit = service()
    assert unit["StateDirectory"] == ["scrubgate scrubgate/spool"]
    assert unit["LoadCredential"] == ["hash-key:/etc/scrubgate/hash-key"]


def test_environment_feeds_the_variables_config_example_reads(tmp_path):
    """The unit's Environment= lines name variables config.example.yaml interpolates, and
    the example loads with them as systemd would set them."""
    environment = dict(line.split("=", 1) for line in service()["Environment"])
    example = (REPO / "config.example.yaml").read_text()
    for name in environment:
        assert f"${{{name}:-" in example, name
    key_file = tmp_path / "credentials" / "hash-key"
    key_file.parent.mkdir()
    key_file.write_text("k" * 64 + "\n")
    state = tmp_path / "state"
    expanded = {
        name: value.replace("%d", str(key_file.parent)).replace("%S", str(state))
        for name, value in environment.items()
    }
    settings = load_settings(REPO / "config.example.yaml", environ=expanded)
    assert settings.audit.file == str(state / "scrubgate" / "audit.jsonl")


def systemd_analyze() -> str:
    path = shutil.which("systemd-analyze")
    if path is None:
        pytest.skip("systemd-analyze is not installed")
    return path


def test_systemd_analyze_verify_is_silent(tmp_path):
    """systemd checks every key and value; it also wants ExecStart's program to exist, so
    the unit is verified as installed under a prefix that has one."""
    prefix = tmp_path / "opt"
    (prefix / "bin").mkdir(parents=True)
    shutil.copy("/bin/true", prefix / "bin" / "scrubgate")
    unit = tmp_path / UNIT.name
    unit.write_text(UNIT.read_text().replace(INSTALL_PREFIX, str(prefix)))
    result = subprocess.run(
        [systemd_analyze(), "verify", str(unit)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout + result.stderr == ""


def test_systemd_analyze_security_rates_it_ok():
    result = subprocess.run(
        [systemd_analyze(), "security", "--offline=yes", "--no-pager", str(UNIT)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    exposure = re.search(
        r"Overall exposure level for scrubgate\.service: ([\d.]+) (\w+)", result.stdout
    )
    assert exposure, result.stdout
    assert float(exposure.group(1)) <= 2.0 and exposure.group(2) == "OK", exposure.group(0)

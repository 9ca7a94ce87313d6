"""``scrubgate run | check | scrub | demo | schema | version``."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections import Counter
from importlib import metadata
from pathlib import Path

from filters.outcome import Outcome, PayloadError
from proxy.build import StaleBuildError, check_fresh
from proxy.log import configure as configure_logging
from proxy.pipeline import scrub_request
from proxy.settings import LoadedSettings, SettingsError, load_settings


def main(argv: list[str] | None = None) -> int:
    try:
        check_fresh()
    except StaleBuildError as error:
        print(f"scrubgate: {error}", file=sys.stderr)
        return 1
    parser = _parser()
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help(sys.stderr)
        return 2
    return int(args.handler(args))


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="scrubgate", description="Telemetry scrubbing proxy.")
    commands = parser.add_subparsers(dest="command")

    run = commands.add_parser("run", help="serve the listeners of a settings file")
    run.add_argument("--config", required=True, help="settings file (YAML)")
    _logging_options(run)
    run.set_defaults(handler=_run)

    check = commands.add_parser("check", help="validate a settings file by compiling it")
    check.add_argument("--config", required=True)
    check.set_defaults(handler=_check)

    scrub = commands.add_parser("scrub", help="scrub one request body as a route would")
    scrub.add_argument("--config", required=True)
    scrub.add_argument("--route", required=True, help="route name from the settings file")
    scrub.add_argument(
        "--content-type", default=None, help="Content-Type of the body (default: sniffed)"
    )
    scrub.add_argument(
        "--content-encoding", default=None, help="Content-Encoding of the body, if compressed"
    )
    scrub.add_argument(
        "--explain", action="store_true", help="print rule hits (ids, paths, counts) to stderr"
    )
    scrub.add_argument("input", nargs="?", default="-", help="body file, or - for standard input")
    scrub.set_defaults(handler=_scrub)

    demo = commands.add_parser("demo", help="run the proxy with a local sink and show before/after")
    demo.add_argument("--config", default="config.example.yaml")
    demo.add_argument("--once", action="store_true", help="exit after sending the sample requests")
    _logging_options(demo)
    demo.set_defaults(handler=_demo)

    schema = commands.add_parser(
        "schema", help="print the JSON Schema (draft 2020-12) of the settings file"
    )
    schema.set_defaults(handler=_schema)

    version = commands.add_parser("version", help="print the version")
    version.set_defaults(handler=_version)
    return parser


def _logging_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--log-level", default="info", choices=("debug", "info", "warning", "error")
    )
    parser.add_argument(
        "--log-format", default="text", choices=("text", "json"), help="json: one object per line"
    )


def _load(path: str) -> LoadedSettings | None:
    try:
        return load_settings(path)
    except SettingsError as error:
        _print_problems(path, error)
        return None


def _print_problems(path: str, error: SettingsError) -> None:
    for problem in error.problems:
        print(problem, file=sys.stderr)
    print(f"{path}: {len(error.problems)} problem(s)", file=sys.stderr)


def _check(args: argparse.Namespace) -> int:
    settings = _load(args.config)
    if settings is None:
        return 1
    print(settings.summary())
    return 0


def _run(args: argparse.Namespace) -> int:
    # With workers, the supervisor gives them a private metrics directory of its own; an
    # inherited one must not switch this process's metrics to files before that.
    os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None)
    from proxy.eventloop import run_loop
    from proxy.server import ScrubgateServer
    from proxy.spool import SpoolLocked
    from proxy.state import SettingsHolder

    configure_logging(args.log_level, json_lines=args.log_format == "json")
    try:
        holder = SettingsHolder(args.config)
    except SettingsError as error:
        _print_problems(args.config, error)
        return 1
    settings = holder.current.settings
    try:
        if settings.workers > 1:
            from proxy.supervisor import Supervisor

            options = ["--log-level", args.log_level, "--log-format", args.log_format]
            return run_loop(Supervisor(settings, options).run())
        run_loop(ScrubgateServer(holder).run_forever())
    except (SpoolLocked, OSError) as error:
        # Another instance holds the spool, or a listener's port cannot be bound.
        print(f"scrubgate: cannot start: {error}", file=sys.stderr)
        return 1
    return 0


def _scrub(args: argparse.Namespace) -> int:
    settings = _load(args.config)
    if settings is None:
        return 1
    route = settings.route(args.route)
    if route is None:
        known = ", ".join(route.name for route in settings.routes)
        print(f"unknown route {args.route!r} (routes: {known})", file=sys.stderr)
        return 1
    body = sys.stdin.buffer.read() if args.input == "-" else Path(args.input).read_bytes()
    if route.mode in ("drop", "block"):
        print(
            f"route {route.name!r} is in mode {route.mode}: nothing would be sent", file=sys.stderr
        )
        return 0
    if route.mode == "forward":
        print(
            f"route {route.name!r} is in mode forward: the body would be sent unchanged",
            file=sys.stderr,
        )
        sys.stdout.buffer.write(body)
        return 0
    try:
        scrubbed = scrub_request(
            route,
            settings.limits,
            body,
            content_type=args.content_type,
            content_encoding=args.content_encoding,
            path=route.path_prefix,
            explain=args.explain,
        )
    except PayloadError as error:
        print(f"cannot scrub the input: {error}", file=sys.stderr)
        return 1
    if scrubbed.body is None:
        print("every event was dropped: nothing would be sent", file=sys.stderr)
    else:
        sys.stdout.buffer.write(scrubbed.body)
    if args.explain:
        _explain(scrubbed.outcome)
    return 0


def _explain(outcome: Outcome) -> None:
    changes = Counter(outcome.changes or [])
    for (rule, path), count in sorted(changes.items()):
        print(f"{rule}\t{path}\t{count}", file=sys.stderr)
    for detector, count in sorted(outcome.detector_hits.items()):
        print(f"detector {detector}\t{count}", file=sys.stderr)
    dropped = outcome.events_in - outcome.events_out
    print(
        f"events: {outcome.events_in} in, {outcome.events_out} out, {dropped} dropped",
        file=sys.stderr,
    )


def _demo(args: argparse.Namespace) -> int:
    from proxy.demo import run_demo

    configure_logging(args.log_level, json_lines=args.log_format == "json")
    return asyncio.run(run_demo(args.config, once=args.once))


def _schema(_args: argparse.Namespace) -> int:
    from proxy.reference import settings_json_schema_text

    sys.stdout.write(settings_json_schema_text())
    return 0


def _version(_args: argparse.Namespace) -> int:
    try:
        version = metadata.version("scrubgate")
    except metadata.PackageNotFoundError:
        version = "unknown (not installed)"
    print(f"scrubgate {version}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

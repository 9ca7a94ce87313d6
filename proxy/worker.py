"""One worker process of a multi-worker scrubgate, started by :mod:`proxy.supervisor`::

    python -m proxy.worker --config FILE --index I --control-fd FD [--log-level L] [--log-format F]

A worker serves every listener of the settings file on ports it shares with the other
workers, and reports to its supervisor over the socket ``FD`` (one JSON line per
:class:`Report`): ``ready`` once it serves, and the outcome of every reload (SIGHUP). When
that socket reaches end of file the supervisor is gone, and the worker stops as on SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import socket
import sys
from dataclasses import dataclass

import orjson

from proxy.eventloop import run_loop
from proxy.log import configure as configure_logging
from proxy.server import ScrubgateServer
from proxy.settings import SettingsError
from proxy.spool import SpoolLocked
from proxy.state import ReloadResult, SettingsHolder

log = logging.getLogger("scrubgate.worker")

READY = "ready"
RELOADED = "reloaded"
RELOAD_FAILED = "reload_failed"
EVENTS = (READY, RELOADED, RELOAD_FAILED)


@dataclass(frozen=True, slots=True)
class Report:
    """A message from a worker to its supervisor: ``ready`` and ``reloaded`` carry the
    SHA-256 of the settings file the worker now serves, ``reload_failed`` the problems."""

    event: str
    digest: str | None = None
    problems: tuple[str, ...] = ()

    def encode(self) -> bytes:
        fields = {"event": self.event, "digest": self.digest, "problems": list(self.problems)}
        return orjson.dumps(fields) + b"\n"

    @classmethod
    def decode(cls, line: bytes) -> Report:
        """The report in one line (raises ``ValueError`` for anything else)."""
        fields = orjson.loads(line)
        if not isinstance(fields, dict) or fields.get("event") not in EVENTS:
            raise ValueError("not a worker report")
        digest = fields.get("digest")
        problems = fields.get("problems") or []
        return cls(fields["event"], str(digest) if digest else None, tuple(map(str, problems)))


class ControlChannel:
    """The worker's end of the socket pair it shares with its supervisor."""

    def __init__(self, descriptor: int) -> None:
        self._socket = socket.socket(fileno=descriptor)

    def send(self, report: Report) -> None:
        # A supervisor that is gone cannot be told; the worker notices on its own.
        with contextlib.suppress(OSError):
            self._socket.sendall(report.encode())

    def stop_when_supervisor_exits(self, loop: asyncio.AbstractEventLoop) -> None:
        """Stop this worker (as SIGTERM does) when the supervisor's end closes."""
        self._socket.setblocking(False)
        loop.add_reader(self._socket.fileno(), self._check_supervisor, loop)

    def _check_supervisor(self, loop: asyncio.AbstractEventLoop) -> None:
        try:
            data = self._socket.recv(1)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            loop.remove_reader(self._socket.fileno())
            log.warning("the supervisor is gone; stopping")
            os.kill(os.getpid(), signal.SIGTERM)


class ReportingSettingsHolder(SettingsHolder):
    """A worker's settings: every reload's outcome is also reported to the supervisor."""

    def __init__(self, path: str, channel: ControlChannel) -> None:
        self._channel = channel
        super().__init__(path)

    def reload(self) -> ReloadResult:
        result = super().reload()
        if result.ok:
            self._channel.send(Report(RELOADED, digest=self.current.settings.digest))
        else:
            self._channel.send(Report(RELOAD_FAILED, problems=result.problems))
        return result


async def serve(holder: SettingsHolder, index: int, channel: ControlChannel) -> int:
    """Serve until stopped; report ``ready`` once every listener is up. Exit status."""
    server = ScrubgateServer(holder, worker_index=index, supervised=True)
    running = asyncio.create_task(server.run_forever())
    ready = asyncio.create_task(server.ready.wait())
    await asyncio.wait((running, ready), return_when=asyncio.FIRST_COMPLETED)
    if ready.done():
        channel.send(Report(READY, digest=holder.current.settings.digest))
        channel.stop_when_supervisor_exits(asyncio.get_running_loop())
    else:
        ready.cancel()
    try:
        await running
    except OSError as error:
        log.error("cannot serve the listeners: %s", error.strerror or error)
        return 1
    except SpoolLocked as error:
        log.error("cannot start: %s", error)
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    configure_logging(args.log_level, json_lines=args.log_format == "json", worker=args.index)
    # Until the server handles SIGHUP, one would end the process; the supervisor only
    # signals ready workers, and checks the settings a worker reports at ready anyway.
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    channel = ControlChannel(args.control_fd)
    try:
        holder = ReportingSettingsHolder(args.config, channel)
    except SettingsError as error:
        log.error("the settings file does not load:\n%s", error)
        return 1
    return run_loop(serve(holder, args.index, channel))


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m proxy.worker")
    parser.add_argument("--config", required=True)
    parser.add_argument("--index", type=int, required=True)
    parser.add_argument("--control-fd", type=int, required=True)
    parser.add_argument("--log-level", default="info")
    parser.add_argument("--log-format", default="text", choices=("text", "json"))
    return parser


if __name__ == "__main__":
    sys.exit(main())

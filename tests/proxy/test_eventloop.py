"""proxy/eventloop.py: scrubgate serves on uvloop when it is installed."""

import asyncio
import importlib.util

from proxy.eventloop import loop_factory, run_loop


async def running_loop_module() -> str:
    await asyncio.sleep(0)
    return type(asyncio.get_running_loop()).__module__


def test_run_loop_uses_uvloop_when_installed_and_returns_the_result():
    expected = "uvloop" if importlib.util.find_spec("uvloop") else "asyncio"
    assert run_loop(running_loop_module()).split(".")[0] == expected
    assert (loop_factory() is None) == (expected == "asyncio")

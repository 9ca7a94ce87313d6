"""proxy/log.py: a worker process's log lines say which worker wrote them."""

import logging

import orjson
import pytest

from proxy.log import JsonFormatter, configure


def record() -> logging.LogRecord:
    return logging.LogRecord("scrubgate", logging.INFO, __file__, 1, "listening", None, None)


def test_json_lines_carry_the_worker_index_only_in_a_worker():
    assert orjson.loads(JsonFormatter(worker=2).format(record()))["worker"] == 2
    assert "worker" not in orjson.loads(JsonFormatter().format(record()))


@pytest.mark.parametrize(
    ("worker", "origin"), [(None, " scrubgate: "), (1, " worker 1 scrubgate: ")]
)
def test_text_lines_name_the_worker(worker, origin):
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    try:
        configure("info", json_lines=False, worker=worker)
        line = root.handlers[0].format(record())
    finally:
        root.handlers[:], _ = saved
        root.setLevel(saved[1])
    assert f"INFO{origin}listening" in line

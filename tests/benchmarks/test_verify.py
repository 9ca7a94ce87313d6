"""benchmarks/verify.py: the benchmark refuses to time a proxy that leaks or re-encodes."""

from __future__ import annotations

import gzip
from pathlib import Path

import orjson
import pytest

from benchmarks.http1 import Message
from benchmarks.payloads import analytics_batch
from benchmarks.verify import VerificationFailed, check_delivery, personal_values
from proxy.pipeline import scrub_request
from proxy.settings import load_settings

ROOT = Path(__file__).resolve().parents[2]
DOCUMENT = orjson.dumps(analytics_batch(lean=True))


def arrived(body: bytes, encoding: str | None = None) -> Message:
    headers = {"content-type": "application/json"}
    if encoding:
        headers["content-encoding"] = encoding
    return Message(b"POST /v1/batch HTTP/1.1", headers, body)


@pytest.fixture(scope="module")
def scrubbed() -> bytes:
    """DOCUMENT as the default policy of config.example.yaml scrubs it."""
    settings = load_settings(ROOT / "config.example.yaml", {"SCRUBGATE_HASH_KEY": "b" * 64})
    route = settings.route("analytics")
    assert route is not None
    scrubbed = scrub_request(
        route,
        settings.limits,
        DOCUMENT,
        content_type="application/json",
        content_encoding=None,
        path="/v1/batch",
    )
    assert scrubbed.body is not None
    return scrubbed.body


def test_generated_batch_holds_every_kind_of_personal_value():
    kinds = {kind for kind, _ in personal_values(orjson.loads(DOCUMENT))}

    assert kinds == {"id", "email", "phone", "ip", "card"}


def test_scrub_passes_with_the_default_policy_output(scrubbed):
    check_delivery("scrub", "33 KB plain", DOCUMENT, DOCUMENT, None, arrived(scrubbed))


def test_scrub_fails_when_the_sink_gets_the_batch_unscrubbed():
    with pytest.raises(VerificationFailed, match="personal values reached the sink: card, email"):
        check_delivery("scrub", "33 KB plain", DOCUMENT, DOCUMENT, None, arrived(DOCUMENT))


def test_scrub_fails_when_events_are_lost(scrubbed):
    batch = orjson.loads(scrubbed)
    batch["batch"].pop()

    with pytest.raises(VerificationFailed, match="lost its structure"):
        check_delivery("scrub", "x", DOCUMENT, DOCUMENT, None, arrived(orjson.dumps(batch)))


def test_gzip_must_arrive_gzip():
    sent = gzip.compress(DOCUMENT)

    check_delivery("forward", "x", DOCUMENT, sent, "gzip", arrived(sent, "gzip"))
    with pytest.raises(VerificationFailed, match="Content-Encoding None reached the sink"):
        check_delivery("roundtrip", "x", DOCUMENT, sent, "gzip", arrived(DOCUMENT))


def test_relays_must_deliver_the_exact_bytes():
    with pytest.raises(VerificationFailed, match="not receive the body unchanged"):
        check_delivery("passthrough", "x", DOCUMENT, DOCUMENT, None, arrived(DOCUMENT + b" "))

"""proxy/codecs/fields.py with the real engine: a JSON-valued field changed in place by a
field rule must be written back changed (regression: it was sent with its original text)."""

import base64
from urllib.parse import parse_qsl, urlencode

import orjson
import pytest

from filters.compile import compile_policy
from filters.spec import EngineSpec, HashingSpec, PolicySpec, RuleSpec
from proxy.codecs.base import CodecContext
from proxy.codecs.form import scrub_form
from proxy.codecs.query import scrub_query

PLAN = compile_policy(
    PolicySpec("p", (RuleSpec("hash-ids", "hash", ("**.userId",)),)),
    EngineSpec(hashing=HashingSpec(key=b"fields-test-key-0123456789")),
)


def ctx() -> CodecContext:
    return CodecContext(
        scrub=PLAN.scrub,
        scrub_text=PLAN.scrub_text,
        content_type="application/x-www-form-urlencoded",
        path="/",
    )


@pytest.mark.parametrize(
    "encode",
    [
        pytest.param(lambda value: value.decode(), id="json-text"),
        pytest.param(lambda value: base64.b64encode(value).decode(), id="base64-json"),
        pytest.param(
            lambda value: base64.urlsafe_b64encode(value).decode().rstrip("="), id="base64url-json"
        ),
    ],
)
def test_field_changed_in_place_by_a_field_rule_is_rewritten(encode):
    field = encode(orjson.dumps({"userId": "user-12345", "plan": "pro"}))
    body = urlencode({"context": field, "other": "x"}).encode()
    result = scrub_form(body, ctx())
    sent = dict(parse_qsl(result.body.decode()))
    assert "user-12345" not in result.body.decode()
    assert sent["other"] == "x"
    assert result.outcome.rule_hits["hash-ids"] == 1


def test_query_value_changed_in_place_is_rewritten():
    query = urlencode({"cx": orjson.dumps({"userId": "user-12345"}).decode()})
    scrubbed, outcome = scrub_query(query, ctx())
    assert "user-12345" not in scrubbed
    assert outcome.rule_hits["hash-ids"] == 1

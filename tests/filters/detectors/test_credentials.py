"""Tokens, keys and secret assignments: replaced whole, with the names around them kept."""

from __future__ import annotations

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from filters.detectors.base import BufferKind
from filters.detectors.credentials import secret_assignment
from filters.detectors.scanner import Scanner

JWT = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9"
    ".eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ"
    ".SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c"
)
UNSIGNED_JWT = "eyJhbGciOiJub25lIn0.eyJzdWIiOiIxIn0."
NO_ALG_JWT = "eyJ0eXAiOiJKV1QifQ.eyJzdWIiOiIxIn0.abc"
BASIC = "YWxhZGRpbjpvcGVuc2VzYW1l"  # aladdin:opensesame

JWT_CASES = [
    pytest.param(f"token {JWT} end", "token [jwt] end", id="signed"),
    pytest.param(f"{UNSIGNED_JWT} x", "[jwt] x", id="unsigned"),
    pytest.param(f"?id_token={JWT}&a=1", "?id_token=[jwt]&a=1", id="in-query"),
    pytest.param(f"{JWT}.", "[jwt].", id="sentence-end"),
]

JWT_NEGATIVES = [
    pytest.param(NO_ALG_JWT, id="header-without-alg"),
    pytest.param("eyJub3QganNvbg.eyJzdWIiOiIxIn0.abc", id="header-not-json"),
    pytest.param("www.example.com", id="dotted-name"),
    pytest.param("[jwt]", id="own-replacement"),
]


@pytest.mark.parametrize(("text", "expected"), JWT_CASES)
def test_jwt_text(redact_text, text, expected):
    assert redact_text(text, "jwt") == expected


@pytest.mark.parametrize(("text", "expected"), JWT_CASES)
def test_jwt_json(redact_json, text, expected):
    assert redact_json({"t": text}, "jwt") == {"t": expected}


@pytest.mark.parametrize("text", JWT_NEGATIVES)
def test_jwt_negatives(redact_text, text):
    assert redact_text(text, "jwt") == text


def test_jwt_leaves_no_piece_behind(redact_json):
    # Header, payload and signature all go, also right after a JSON escape.
    assert redact_json([f"\n{JWT}"], "jwt") == ["\n[jwt]"]


BEARER_CASES = [
    pytest.param(
        "Authorization: Bearer abc123.def-456_ghi",
        "Authorization: Bearer [credential]",
        id="bearer",
    ),
    pytest.param(
        "authorization: bearer AbCdEfGhIjKl", "authorization: bearer [credential]", id="case"
    ),
    pytest.param(f"Authorization: Basic {BASIC}", "Authorization: Basic [credential]", id="basic"),
    pytest.param("Bearer abc123def456.", "Bearer [credential].", id="sentence-end"),
]

BEARER_NEGATIVES = [
    pytest.param("Bearer authentication is used", id="prose-bearer"),
    pytest.param("Basic authentication too", id="prose-basic"),
    pytest.param("Basic bm9jb2xvbmhlcmUh", id="basic-without-colon"),
    pytest.param("Bearer short1", id="too-short"),
    pytest.param("NotBearer abc123def456", id="inside-word"),
    pytest.param("Bearer [credential]", id="own-replacement"),
]


@pytest.mark.parametrize(("text", "expected"), BEARER_CASES)
def test_bearer_text(redact_text, text, expected):
    assert redact_text(text, "bearer") == expected


@pytest.mark.parametrize(("text", "expected"), BEARER_CASES)
def test_bearer_json(redact_json, text, expected):
    assert redact_json({"h": text}, "bearer") == {"h": expected}


@pytest.mark.parametrize("text", BEARER_NEGATIVES)
def test_bearer_negatives(redact_text, text):
    assert redact_text(text, "bearer") == text


def test_bearer_jwt_is_named_jwt(redact_text):
    assert redact_text(f"Bearer {JWT}", "jwt", "bearer") == "Bearer [jwt]"


KEY_CASES = [
    pytest.param("aws_access_key", "key AKIAIOSFODNN7EXAMPLE.", "key [credential].", id="akia"),
    pytest.param("aws_access_key", "ASIAY34FZKBOKMUTVV7A", "[credential]", id="asia"),
    pytest.param(
        "aws_access_key",
        "X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20240101",
        "X-Amz-Credential=[credential]%2F20240101",
        id="in-presigned-url",
    ),
    pytest.param(
        "aws_access_key", "%3DAKIAIOSFODNN7EXAMPLE", "%3D[credential]", id="after-percent-escape"
    ),
    pytest.param(
        "aws_secret_key",
        "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        "aws_secret_access_key = [secret]",
        id="ini",
    ),
    pytest.param(
        "aws_secret_key",
        'AWS_SECRET_ACCESS_KEY="wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"',
        'AWS_SECRET_ACCESS_KEY="[secret]"',
        id="env",
    ),
    pytest.param(
        "aws_secret_key",
        '"SecretAccessKey": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"',
        '"SecretAccessKey": "[secret]"',
        id="json-in-text",
    ),
    pytest.param(
        "aws_secret_key",
        "<SecretAccessKey>wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY</SecretAccessKey>",
        "<SecretAccessKey>[secret]</SecretAccessKey>",
        id="xml",
    ),
    pytest.param("github_token", "ghp_" + "a1B2" * 9, "[credential]", id="ghp"),
    pytest.param("github_token", "x ghs_" + "Z9" * 18 + " y", "x [credential] y", id="ghs"),
    pytest.param("github_token", "github_pat_11ABCDEFG0_" + "x" * 59, "[credential]", id="pat"),
    pytest.param("gitlab_token", "glpat-abcdefghij0123456789.", "[credential].", id="glpat"),
    pytest.param("gitlab_token", "GR1348941abcdefghij0123456789", "[credential]", id="runner"),
    pytest.param("slack_token", "xoxb-1234567890-0987654321-abcdef", "[credential]", id="xoxb"),
    pytest.param("slack_token", "xapp-1-A012ABCD-12345-abcdef", "[credential]", id="xapp"),
    pytest.param(
        "slack_token",
        "https://hooks.slack.com/services/T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX",
        "https://hooks.slack.com/services/[credential]",
        id="webhook",
    ),
    pytest.param(
        "stripe_key", "sk_live_" + "4eC39HqLyjWDarjtT1zdp7dc", "[credential]", id="sk-live"
    ),
    pytest.param("stripe_key", "rk_test_" + "a" * 24, "[credential]", id="rk-test"),
    pytest.param("stripe_key", "whsec_" + "b" * 32, "[credential]", id="whsec"),
]

KEY_NEGATIVES = [
    pytest.param("aws_access_key", "AKIAIOSFODNN7EXAMPL", id="aws-too-short"),
    pytest.param("aws_access_key", "XAKIAIOSFODNN7EXAMPLE", id="aws-inside-word"),
    pytest.param("aws_access_key", "AKIAIOSFODNN7EXAMPLEX", id="aws-too-long"),
    pytest.param(
        "aws_secret_key", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", id="aws-secret-no-context"
    ),
    pytest.param("github_token", "ghp_short", id="gh-too-short"),
    pytest.param("github_token", "sha ghx_" + "a" * 36, id="gh-unknown-prefix"),
    pytest.param("gitlab_token", "glpat-short", id="gl-too-short"),
    pytest.param("slack_token", "xoxb-short", id="slack-too-short"),
    pytest.param("stripe_key", "sk_live_short", id="stripe-too-short"),
    pytest.param("stripe_key", "ask_live_" + "a" * 24, id="stripe-inside-word"),
]


@pytest.mark.parametrize(("name", "text", "expected"), KEY_CASES)
def test_keys_text(redact_text, name, text, expected):
    assert redact_text(text, name) == expected


@pytest.mark.parametrize(("name", "text", "expected"), KEY_CASES)
def test_keys_json(redact_json, name, text, expected):
    assert redact_json({"k": text}, name) == {"k": expected}


@pytest.mark.parametrize(("name", "text"), KEY_NEGATIVES)
def test_keys_negatives(redact_text, name, text):
    assert redact_text(text, name) == text


def test_aws_secret_in_json_document(redact_json):
    document = {"SecretAccessKey": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "x": 1}
    assert redact_json(document, "aws_secret_key") == {"SecretAccessKey": "[secret]", "x": 1}


SECRET_CASES = [
    pytest.param("password=hunter2", "password=[secret]", id="equals"),
    pytest.param("login ok passwd: hunter2, next", "login ok passwd: [secret], next", id="colon"),
    pytest.param('secret = "two words"', 'secret = "[secret]"', id="double-quoted"),
    pytest.param("token='a b c'", "token='[secret]'", id="single-quoted"),
    pytest.param("API_KEY=abc123&x=1", "API_KEY=[secret]&x=1", id="upper-case"),
    pytest.param("api-key: k1", "api-key: [secret]", id="dash-name"),
    pytest.param("client_secret=s3cr3t", "client_secret=[secret]", id="suffix-name"),
    pytest.param("db_password=pw;host=x", "db_password=[secret];host=x", id="prefixed-name"),
    pytest.param('{"password": "hunter2"}', '{"password": "[secret]"}', id="json-in-text"),
    pytest.param(
        '{\\"password\\":\\"hunter 2\\"}', '{\\"password\\":\\"[secret]\\"}', id="escaped-json"
    ),
    pytest.param("pwd => s3cr3t", "pwd => [secret]", id="fat-arrow"),
    pytest.param("User(name=x, password=hunter2)", "User(name=x, password=[secret])", id="call"),
    pytest.param("{password=hunter2}", "{password=[secret]}", id="braces"),
    pytest.param('password="a \\" b" x', 'password="[secret]" x', id="escaped-quote-inside"),
    # A value ends with its line, and at a backslash: in JSON at the escape (\n, \t,
    # \", \\, \u0001), in text at the character the escape stands for.
    pytest.param("password=hunter2\nnext line", "password=[secret]\nnext line", id="newline"),
    pytest.param("pwd=hunter2\tx", "pwd=[secret]\tx", id="tab-after"),
    pytest.param("password=abc\\def", "password=[secret]\\def", id="backslash"),
    pytest.param("password=abc\x01def", "password=[secret]\x01def", id="control"),
    pytest.param("password:\thunter2", "password:\t[secret]", id="tab-before"),
    pytest.param(
        "password=\npassword: hunter2", "password=\npassword: [secret]", id="empty-then-line"
    ),
    pytest.param("token='a b\nc'", "token='[secret] b\nc'", id="unclosed-on-its-line"),
    pytest.param('password=" two words"', 'password="[secret]"', id="quoted-leading-space"),
    pytest.param('{"password": "a\\nb"}', '{"password": "[secret]"}', id="json-string-with-escape"),
    pytest.param(
        '{\\"password\\":\\"a\nb\\"}',
        '{\\"password\\":\\"[secret]\nb\\"}',
        id="escaped-json-unclosed-on-its-line",
    ),
]

SECRET_NEGATIVES = [
    pytest.param("password is required", id="prose"),
    pytest.param("password_reset=1", id="longer-name"),
    pytest.param("token_type=bearer", id="token-type"),
    pytest.param("secret=null, token: true, password=false", id="json-literals"),
    pytest.param("password=****", id="mask"),
    pytest.param("password=", id="empty"),
    pytest.param("password=[secret] token: [secret]", id="own-replacement"),
]


@pytest.mark.parametrize(("text", "expected"), SECRET_CASES)
def test_secret_assignment_text(redact_text, text, expected):
    assert redact_text(text, "secret_assignment") == expected


@pytest.mark.parametrize(("text", "expected"), SECRET_CASES)
def test_secret_assignment_json_string(redact_json, text, expected):
    assert redact_json({"log": text}, "secret_assignment") == {"log": expected}


@pytest.mark.parametrize("text", SECRET_NEGATIVES)
def test_secret_assignment_negatives(redact_text, redact_json, text):
    assert redact_text(text, "secret_assignment") == text
    assert redact_json([text], "secret_assignment") == [text]


@pytest.mark.parametrize(
    ("document", "expected"),
    [
        pytest.param({"password": "hunter2"}, {"password": "[secret]"}, id="string"),
        pytest.param({"pin": {"token": 123456}}, {"pin": {"token": "[secret]"}}, id="number"),
        pytest.param(
            {"password": None, "token": True}, {"password": None, "token": True}, id="lit"
        ),
        pytest.param({"api_key": "a\nb"}, {"api_key": "[secret]"}, id="escape-inside-value"),
        pytest.param({"token": 'x"y'}, {"token": "[secret]"}, id="escaped-quote-in-value"),
    ],
)
def test_secret_assignment_json_fields(redact_json, document, expected):
    assert redact_json(document, "secret_assignment") == expected


_AROUND_A_NAME = st.lists(
    st.sampled_from(
        (
            *("=", ":", "=>", " ", '"', "'", "\\", "\n", "\t", "\r", "\x01", "a", "b", "n"),
            *("t", "?", "&", "*", ",", "é", '\\"', "\\n", "\\t", "\\\\"),
        )
    ),
    max_size=12,
)


@settings(max_examples=500)
@given(
    before=_AROUND_A_NAME,
    name=st.sampled_from(["password", "token", "api_key"]),
    after=_AROUND_A_NAME,
)
def test_text_and_json_read_the_same_values(scanners, backend, before, name, after):
    # The JSON of a text has an escape where the text has a control character, a quote or
    # a backslash: both must give the same value boundaries.
    text = "".join(before) + name + "".join(after)
    scanner = scanners.get(("sensitive_query_params", "secret_assignment"), backend)
    as_text, _ = scanner.redact(text.encode(), BufferKind.TEXT)
    as_json, _ = scanner.redact(orjson.dumps(text), BufferKind.JSON)
    assert orjson.loads(as_json) == as_text.decode()


def test_secret_names_are_configurable():
    scanner = Scanner([secret_assignment(("pin",))])
    output, _ = scanner.redact(b"pin=1234 password=x", BufferKind.TEXT)
    assert output == b"pin=[secret] password=x"


@pytest.mark.parametrize("names", [(), ("",), ("a=b",), ('a"',)], ids=str)
def test_secret_names_are_checked(names):
    with pytest.raises(ValueError, match="secret names"):
        secret_assignment(names)

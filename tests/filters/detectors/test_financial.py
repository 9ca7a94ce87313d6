"""Card numbers, IBANs and SSNs: checksums, layouts, and the numbers that only look alike."""

from __future__ import annotations

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from filters.detectors.financial import (
    _cards_in_groups,
    _lone_card,
    iban_valid,
    is_card_number,
    luhn_valid,
)

CARD_CASES = [
    pytest.param("card 4111111111111111 ok", "card [card] ok", id="visa"),
    pytest.param("4111 1111 1111 1111", "[card]", id="visa-spaces"),
    pytest.param("4111-1111-1111-1111", "[card]", id="visa-dashes"),
    pytest.param("4222222222222", "[card]", id="visa-13"),
    pytest.param("5555555555554444", "[card]", id="mastercard"),
    pytest.param("2223003122003222", "[card]", id="mastercard-2-series"),
    pytest.param("378282246310005", "[card]", id="amex"),
    pytest.param("3782 822463 10005", "[card]", id="amex-4-6-5"),
    pytest.param("6011111111111117", "[card]", id="discover"),
    pytest.param("3530111333300000", "[card]", id="jcb"),
    pytest.param("30569309025904", "[card]", id="diners"),
    pytest.param("3056 930902 5904", "[card]", id="diners-4-6-4"),
    pytest.param("6200000000000005", "[card]", id="unionpay"),
    pytest.param("paid with 4111 1111 1111 1111 2024", "paid with [card] 2024", id="then-year"),
    pytest.param("cc:4111111111111111;", "cc:[card];", id="punctuation"),
    pytest.param("n=4111111111111111", "n=[card]", id="assignment"),
    pytest.param("x1234 4111 1111 1111 1111", "x1234 [card]", id="after-glued-group"),
    # Cards side by side: hyperscan reports no candidate that starts at the second one.
    pytest.param("4111 1111 1111 1111 4111 1111 1111 1111", "[card] [card]", id="two-spaced-cards"),
    pytest.param(
        "4111-1111-1111-1111 5555-5555-5555-4444 3782-822463-10005 x",
        "[card] [card] [card] x",
        id="three-dashed-cards",
    ),
    pytest.param(
        "4111 1111 1111 1111 5555-5555-5555-4444", "[card] [card]", id="spaces-then-dashes"
    ),
    pytest.param("4111 1111 1111 1111 2024 06", "[card] 2024 06", id="then-date-groups"),
]

CARD_NEGATIVES = [
    pytest.param("4111111111111112", id="luhn-fails"),
    pytest.param("order 1234567890123456", id="order-number"),
    pytest.param("1700000000123", id="epoch-millis"),
    pytest.param("1700000000", id="epoch-seconds"),
    pytest.param("ab4111111111111111", id="inside-hex-id"),
    pytest.param("4111111111111111cd", id="before-letters"),
    pytest.param("0.4111111111111111", id="decimal-fraction"),
    pytest.param("41111111111111111111", id="twenty-digit-run"),
    pytest.param("4111 11 11 1111 1111", id="short-groups"),
    pytest.param("4111 1111-1111 1111", id="mixed-separators"),
    pytest.param("**** **** **** 4908", id="masked"),
    pytest.param("4bf92f3577b34da6a3ce929d0e0e4736", id="trace-id"),
    pytest.param("00f067aa0ba902b7", id="span-id"),
    pytest.param("9f8e7d6c5b4a39281706f5e4d3c2b1a098765432", id="sha1"),
    pytest.param("[card]", id="own-replacement"),
]


@pytest.mark.parametrize(("text", "expected"), CARD_CASES)
def test_card_text(redact_text, text, expected):
    assert redact_text(text, "card") == expected


@pytest.mark.parametrize(("text", "expected"), CARD_CASES)
def test_card_json_string(redact_json, text, expected):
    assert redact_json({"c": text}, "card") == {"c": expected}


@pytest.mark.parametrize("text", CARD_NEGATIVES)
def test_card_negatives(redact_text, redact_json, text):
    assert redact_text(text, "card") == text
    assert redact_json([text], "card") == [text]


@pytest.mark.parametrize(
    ("document", "expected"),
    [
        pytest.param({"n": 4111111111111111}, {"n": "[card]"}, id="integer"),
        pytest.param({"n": -4111111111111111}, {"n": "[card]"}, id="negative"),
        pytest.param([4111111111111111, 1], ["[card]", 1], id="in-array"),
        pytest.param(4111111111111111, "[card]", id="top-level"),
        pytest.param({"n": 4111111111111112}, {"n": 4111111111111112}, id="luhn-fails"),
        pytest.param({"ts": 1700000000123}, {"ts": 1700000000123}, id="epoch-millis"),
    ],
)
def test_card_as_bare_json_number_is_quoted(redact_json, document, expected):
    assert redact_json(document, "card") == expected


def test_card_inside_string_that_looks_like_json_structure(redact_json):
    # ":" before and "," after, as around a bare number: still inside the string.
    assert redact_json({"a": "a:4111111111111111,b"}, "card") == {"a": "a:[card],b"}


CARD_TEXT = st.lists(
    st.sampled_from(["4111", "1111", "411", "5555", "4444", "1", "12345", "0"]),
    min_size=1,
    max_size=8,
)


@given(
    CARD_TEXT,
    st.sampled_from([" ", "-", ""]),
    st.sampled_from(["", "a", "1.", "x "]),
    st.sampled_from(["", " 2024", "b", " x", "-77"]),
)
@example(["4111", "1111", "1111", "1111"], "", "a", "")  # a valid card glued to a letter
@example(["4111", "1111", "1111", "1111"], "", "", "b")
@example(["4111", "1111", "1111", "1111"], "", "1.", "")  # or the tail of a decimal
@example(["4111", "1111", "1111", "1111"], "", "", " 2024")
@example(["4111", "1111", "1111", "1111"], " ", "a", "")
def test_the_lone_card_shortcut_agrees_with_the_group_reading(groups, separator, before, after):
    candidate = separator.join(groups).encode()
    buffer = b"\n" + before.encode() + candidate + after.encode() + b"\n"
    start = 1 + len(before)
    end = start + len(candidate)
    lone = _lone_card(buffer, start, end)
    if lone is not None:
        assert lone == _cards_in_groups(buffer, start, end)


@pytest.mark.parametrize(
    ("digits", "valid"),
    [(b"4111111111111111", True), (b"4111111111111112", False), (b"79927398713", True)],
)
def test_luhn(digits, valid):
    assert luhn_valid(digits) is valid


@given(st.text(alphabet="0123456789", min_size=1, max_size=25))
def test_luhn_matches_the_textbook_sum(digits):
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = int(char) * (2 if position % 2 else 1)
        total += value - 9 if value > 9 else value
    assert luhn_valid(digits.encode()) is (total % 10 == 0)


@pytest.mark.parametrize(
    ("digits", "card"),
    [
        pytest.param(b"4111111111111111", True, id="visa"),
        pytest.param(b"411111111111111", False, id="visa-wrong-length"),
        pytest.param(b"1234567812345670", False, id="no-brand"),
        pytest.param(b"5105105105105100", True, id="mastercard"),
        pytest.param(b"5605105105105105", True, id="maestro-range"),
    ],
)
def test_is_card_number(digits, card):
    assert is_card_number(digits) is card


IBAN_CASES = [
    pytest.param("iban DE89370400440532013000.", "iban [iban].", id="de-compact"),
    pytest.param("DE89 3704 0044 0532 0130 00", "[iban]", id="de-print"),
    pytest.param("GB82WEST12345698765432", "[iban]", id="gb-compact"),
    pytest.param("GB82 WEST 1234 5698 7654 32", "[iban]", id="gb-print"),
    pytest.param("FR1420041010050500013M02606", "[iban]", id="fr-letter-in-bban"),
    pytest.param("NL91ABNA0417164300", "[iban]", id="nl"),
    pytest.param("NO9386011117947", "[iban]", id="no-shortest"),
    pytest.param("to: DE89370400440532013000, ok", "to: [iban], ok", id="in-sentence"),
]

IBAN_NEGATIVES = [
    pytest.param("DE89370400440532013001", id="mod97-fails"),
    pytest.param("XX89370400440532013000", id="unknown-country"),
    pytest.param("DE8937040044053201300", id="wrong-length"),
    pytest.param("xDE89370400440532013000", id="inside-word"),
    pytest.param("de89370400440532013000", id="lower-case-country"),
    pytest.param("SKU-27040 AB12CD34EF56GH78", id="sku-like"),
    pytest.param("[iban]", id="own-replacement"),
]


@pytest.mark.parametrize(("text", "expected"), IBAN_CASES)
def test_iban_text(redact_text, text, expected):
    assert redact_text(text, "iban") == expected


@pytest.mark.parametrize(("text", "expected"), IBAN_CASES)
def test_iban_json(redact_json, text, expected):
    assert redact_json({"i": text}, "iban") == {"i": expected}


@pytest.mark.parametrize("text", IBAN_NEGATIVES)
def test_iban_negatives(redact_text, redact_json, text):
    assert redact_text(text, "iban") == text
    assert redact_json([text], "iban") == [text]


def test_iban_after_json_escape(redact_json):
    assert redact_json(["\nDE89370400440532013000"], "iban") == ["\n[iban]"]


def test_iban_valid():
    assert iban_valid("DE89370400440532013000")
    assert not iban_valid("DE89370400440532013001")
    assert not iban_valid("DE8937040044053201300")


SSN_CASES = [
    pytest.param("ssn 123-45-6789.", "ssn [ssn].", id="dashes"),
    pytest.param("123 45 6789", "[ssn]", id="spaces"),
    pytest.param("(078-05-1120)", "([ssn])", id="parens"),
]

SSN_NEGATIVES = [
    pytest.param("000-12-3456", id="area-000"),
    pytest.param("666-12-3456", id="area-666"),
    pytest.param("900-12-3456", id="area-9xx"),
    pytest.param("123-00-6789", id="group-00"),
    pytest.param("123-45-0000", id="serial-0000"),
    pytest.param("1-123-45-6789", id="longer-run-before"),
    pytest.param("123-45-6789-1", id="longer-run-after"),
    pytest.param("123-45 6789", id="mixed-separators"),
    pytest.param("x123-45-6789", id="after-letter"),
    pytest.param("2024-01-15", id="date"),
    pytest.param("[ssn]", id="own-replacement"),
]


@pytest.mark.parametrize(("text", "expected"), SSN_CASES)
def test_ssn_text(redact_text, text, expected):
    assert redact_text(text, "ssn") == expected


@pytest.mark.parametrize(("text", "expected"), SSN_CASES)
def test_ssn_json(redact_json, text, expected):
    assert redact_json({"s": text}, "ssn") == {"s": expected}


@pytest.mark.parametrize("text", SSN_NEGATIVES)
def test_ssn_negatives(redact_text, redact_json, text):
    assert redact_text(text, "ssn") == text
    assert redact_json([text], "ssn") == [text]

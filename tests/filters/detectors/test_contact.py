"""E-mail and phone detectors: positives, tricky negatives, text and JSON buffers."""

from __future__ import annotations

import phonenumbers
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from filters.detectors.contact import phone
from filters.detectors.phone_rules import phone_rules

EMAIL_CASES = [
    pytest.param("mail john.doe@example.com now", "mail [email] now", id="plain"),
    pytest.param("john.doe+tag@mail.example.co.uk", "[email]", id="tag-subdomains"),
    pytest.param("JOHN.DOE@EXAMPLE.COM", "[email]", id="upper-case"),
    pytest.param("write to john@example.com.", "write to [email].", id="sentence-dot"),
    pytest.param("a@example.com,b@example.org", "[email],[email]", id="two-adjacent"),
    pytest.param("<john@example.com>", "<[email]>", id="angle-brackets"),
    pytest.param("mailto:john@example.com", "mailto:[email]", id="mailto"),
    pytest.param("...john@example.com", "...[email]", id="leading-dots"),
    pytest.param("line\njohn@example.com", "line\n[email]", id="after-newline"),
    pytest.param("x=j.o-e_1%2@sub-1.example.travel", "x=[email]", id="odd-local-part"),
    pytest.param("?email=ivan.rossi721@example.com&x=1", "?email=[email]&x=1", id="query"),
    pytest.param("victor.müller288@outlook.test", "[email]", id="utf8-local-part"),
    pytest.param("連絡先 john@example.jpまで", "連絡先 [email]まで", id="cjk-after"),
    # In a file name the address ends before the extension.
    pytest.param("jane.doe@example.com.png", "[email].png", id="file-name"),
    pytest.param("shot-jane.doe@example.com-1.png", "[email]-1.png", id="file-name-numbered"),
    pytest.param("for jane@mail.example.co.uk.PDF", "for [email].PDF", id="file-name-upper"),
    # Percent-encoded "@" (once, or twice for a URL inside a URL): the whole encoded
    # address goes; a percent escape of a separator (":", " ", "/") ends the local part.
    pytest.param(
        "see https://x.example/p/jane.doe%40example.com/x",
        "see https://x.example/p/[email]/x",
        id="percent-encoded-in-path",
    ),
    pytest.param("JANE%40EXAMPLE.COM", "[email]", id="percent-encoded-upper"),
    pytest.param("jane%2540example.com", "[email]", id="percent-encoded-twice"),
    pytest.param("jane%2Btag%40example.com", "[email]", id="percent-encoded-plus"),
    pytest.param("mailto%3Ajane%40example.com", "mailto%3A[email]", id="percent-encoded-mailto"),
    pytest.param("hi%20jane@example.com", "hi%20[email]", id="after-percent-encoded-space"),
    pytest.param(
        "next=https%3A%2F%2Fjane%40example.com", "next=https%3A%2F%2F[email]", id="encoded-url"
    ),
    pytest.param("jane%40example.com.png", "[email].png", id="percent-encoded-file-name"),
]

EMAIL_NEGATIVES = [
    pytest.param("logo@2x.png", id="retina-asset"),
    pytest.param("bundle@3x.webp", id="retina-webp"),
    pytest.param("icon@1.5x.png", id="retina-fraction"),
    pytest.param("icons@2x.sprite.png", id="retina-with-suffix"),
    pytest.param("app@2x.min.js", id="retina-minified"),
    pytest.param("lodash@4.17.21.min.js", id="package-version-file"),
    pytest.param("user@localhost", id="no-tld"),
    pytest.param("@example.com", id="no-local-part"),
    pytest.param("john@", id="no-domain"),
    pytest.param("a@b.c", id="one-letter-tld"),
    pytest.param("left-pad@1.3.0", id="npm-version"),
    pytest.param("[email] and [email]", id="own-replacement"),
    pytest.param("https://john@example.com/", id="url-userinfo-is-not-email"),
    # "%40" that is no "@" of an address.
    pytest.param("https://registry.example/%40scope/pkg", id="percent-encoded-npm-scope"),
    pytest.param("https://registry.example/%40babel%2Fcore", id="percent-encoded-scope-slash"),
    pytest.param("https://cdn.example/img/logo%402x.png", id="percent-encoded-retina-asset"),
    pytest.param("https://x.example/p/%40example.com", id="percent-encoded-no-local-part"),
    pytest.param("a%40b.c", id="percent-encoded-one-letter-tld"),
    pytest.param("100%40", id="percent-encoded-no-domain"),
    pytest.param("https://jane%40example.com:pw@host/", id="percent-encoded-url-userinfo"),
]


@pytest.mark.parametrize(("text", "expected"), EMAIL_CASES)
def test_email_text(redact_text, text, expected):
    assert redact_text(text, "email") == expected


@pytest.mark.parametrize(("text", "expected"), EMAIL_CASES)
def test_email_json(redact_json, text, expected):
    assert redact_json({"v": text}, "email") == {"v": expected}


@pytest.mark.parametrize("text", EMAIL_NEGATIVES)
def test_email_negatives(redact_text, redact_json, text):
    assert redact_text(text, "email") == text
    assert redact_json([text], "email") == [text]


def test_email_after_json_escape_letter(redact_json):
    # "\n" is the two bytes \ n in JSON: the n must not become part of the address.
    assert redact_json(["\njohn@example.com", "\tjo@example.com"], "email") == [
        "\n[email]",
        "\t[email]",
    ]


def test_email_after_literal_backslash_n(redact_text, redact_json):
    # A literal backslash-n (a double-escaped line break) reads as a line break in text,
    # and JSON (where it is \\n) reads it the same way.
    assert redact_text("C:\\njohn@example.com", "email") == "C:\\n[email]"
    assert redact_json(["C:\\njohn@example.com"], "email") == ["C:\\n[email]"]


PHONE_CASES = [
    pytest.param("call +1 415 555 2671 now", "call [phone] now", id="nanp-intl"),
    pytest.param("+1 (415) 555-2671", "[phone]", id="nanp-intl-parens"),
    pytest.param("+1-415-555-2671", "[phone]", id="nanp-intl-dashes"),
    pytest.param("+14155552671", "[phone]", id="e164"),
    pytest.param("+44 20 7946 0958", "[phone]", id="uk-intl"),
    pytest.param("+44 (0)20 7946 0958", "[phone]", id="uk-trunk-in-parens"),
    pytest.param("+33 6 12 34 56 78", "[phone]", id="fr-mobile"),
    pytest.param("+49 30 1234567", "[phone]", id="de"),
    pytest.param("+91 98765 43210", "[phone]", id="in"),
    pytest.param("+81 3-1234-5678", "[phone]", id="jp"),
    pytest.param("tel:+61 2 9876 5432.", "tel:[phone].", id="au-sentence"),
    pytest.param("(415) 555-2671", "[phone]", id="nanp-parens"),
    pytest.param("415-555-2671", "[phone]", id="nanp-dashes"),
    pytest.param("415.555.2671", "[phone]", id="nanp-dots"),
    pytest.param("phone: 020 7946 0958", "phone: [phone]", id="uk-national"),
    pytest.param("06 12 34 56 78", "[phone]", id="fr-national"),
    pytest.param("030 1234567", "[phone]", id="de-national"),
    pytest.param("03-1234-5678", "[phone]", id="jp-national"),
    pytest.param("0412 345 678", "[phone]", id="au-mobile"),
    pytest.param("(11) 91234-5678", "[phone]", id="br-parens"),
    pytest.param("0044 20 7946 0958", "[phone]", id="dialled-from-abroad"),
    pytest.param("+1 415 555 2671 2024", "[phone] 2024", id="trailing-year-group"),
    pytest.param("on 2024-01-15 020 7946 0958", "on 2024-01-15 [phone]", id="after-date"),
]

PHONE_NEGATIVES = [
    pytest.param("4155552671", id="plain-digit-run"),
    pytest.param("+1 555 754 3627", id="invalid-area-code"),
    pytest.param("2024-01-15", id="iso-date"),
    pytest.param("2024-01-15T10:30:00.123Z", id="iso-timestamp"),
    pytest.param("15/01/2024", id="slash-date"),
    pytest.param("15.01.2024", id="dot-date"),
    pytest.param("01.02.2024", id="dot-date-leading-zero"),
    pytest.param("12:30:45", id="time"),
    pytest.param("1700000000 and 1700000000123", id="epochs"),
    pytest.param("10.0.19041.1", id="windows-build"),
    pytest.param("192.168.1.10", id="ipv4"),
    pytest.param("+05:30", id="utc-offset"),
    pytest.param("1.0.0+20130313144700", id="semver-build"),
    pytest.param("415-555-2671-99", id="longer-dashed-id"),
    pytest.param("1920x1080", id="screen-size"),
    pytest.param("price 1 234 567.00", id="grouped-amount"),
    pytest.param("[phone]", id="own-replacement"),
]


@pytest.mark.parametrize(("text", "expected"), PHONE_CASES)
def test_phone_text(redact_text, text, expected):
    assert redact_text(text, "phone") == expected


@pytest.mark.parametrize(("text", "expected"), PHONE_CASES)
def test_phone_json(redact_json, text, expected):
    assert redact_json({"p": text}, "phone") == {"p": expected}


@pytest.mark.parametrize("text", PHONE_NEGATIVES)
def test_phone_negatives(redact_text, redact_json, text):
    assert redact_text(text, "phone") == text
    assert redact_json([text], "phone") == [text]


def test_phone_after_json_escape(redact_json):
    assert redact_json(["\n+44 20 7946 0958"], "phone") == ["\n[phone]"]


def test_phone_number_types_are_not_phones(redact_json):
    # A bare JSON number has no separator or "+": an id, an amount, a timestamp.
    assert redact_json({"n": 4155552671}, "phone") == {"n": 4155552671}


def test_phone_regions_are_configurable():
    from filters.detectors.base import BufferKind
    from filters.detectors.scanner import Scanner

    german_only = Scanner([phone(("DE",))])
    assert german_only.find(b"030 1234567", BufferKind.TEXT)
    assert not german_only.find(b"020 7946 0958", BufferKind.TEXT)


def test_phone_rejects_unknown_region():
    with pytest.raises(ValueError, match="unknown phone region"):
        phone(("XX",))


# --- the metadata shortcut agrees with phonenumbers -------------------------------------

INTERNATIONAL_NUMBERS = [
    "+1 415 555 2671",
    "+1 555 754 3627",
    "+1 242 357 1234",
    "+44 20 7946 0958",
    "+44 7700 900123",
    "+49 30 1234567",
    "+49 151 12345678",
    "+33 6 12 34 56 78",
    "+91 98765 43210",
    "+55 11 91234-5678",
    "+81 3-1234-5678",
    "+61 2 9876 5432",
    "+39 06 1234 5678",
    "+7 495 123-45-67",
    "+86 138 0013 8000",
    "+800 1234 5678",
    "+353 1 234 5678",
    "+1 800 555 0199",
]


@pytest.mark.parametrize("text", INTERNATIONAL_NUMBERS)
def test_phone_rules_match_phonenumbers(text):
    digits = "".join(char for char in text if char.isdigit())
    expected = phonenumbers.is_valid_number(phonenumbers.parse(text, None))
    assert phone_rules().is_valid_international(digits) is expected


@settings(max_examples=300, deadline=None)
@given(
    calling_code=st.sampled_from(["1", "44", "49", "33", "91", "81", "61", "55", "7", "39"]),
    national=st.text(alphabet="0123456789", min_size=6, max_size=12).filter(
        lambda digits: not digits.startswith(("0", "1"))
    ),
)
def test_phone_rules_agree_with_phonenumbers(calling_code, national):
    # Numbers without a national prefix after the calling code, where both must agree.
    try:
        parsed = phonenumbers.parse(f"+{calling_code}{national}", None)
    except phonenumbers.NumberParseException:
        return
    expected = phonenumbers.is_valid_number(parsed)
    assert phone_rules().is_valid_international(calling_code + national) is expected

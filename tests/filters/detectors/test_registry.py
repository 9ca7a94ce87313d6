"""The registry: every built-in by a stable name, options flow through, replacements
are never detected again."""

from __future__ import annotations

import pytest

from filters.detectors import replacements
from filters.detectors.base import BufferKind
from filters.detectors.registry import (
    BUILTIN_NAMES,
    DEFAULT_ENABLED,
    DetectorOptions,
    builtin_detectors,
)
from filters.detectors.scanner import Scanner


def test_builtin_names_are_stable():
    assert BUILTIN_NAMES == (
        "email",
        "phone",
        "card",
        "iban",
        "ssn",
        "ipv4",
        "ipv6",
        "mac",
        "jwt",
        "bearer",
        "aws_access_key",
        "aws_secret_key",
        "github_token",
        "gitlab_token",
        "slack_token",
        "stripe_key",
        "url_userinfo",
        "sensitive_query_params",
        "secret_assignment",
        "home_path",
        "uuid",
    )


def test_builtin_detectors_are_keyed_and_ordered_by_name(scanners):
    detectors = scanners.detectors
    assert tuple(detectors) == BUILTIN_NAMES
    assert all(detector.name == name for name, detector in detectors.items())


def test_default_enabled_matches_the_detectors(scanners):
    flagged = tuple(name for name, d in scanners.detectors.items() if d.default_enabled)
    assert flagged == DEFAULT_ENABLED
    assert "uuid" not in DEFAULT_ENABLED


def test_every_detector_documents_itself(scanners):
    for detector in scanners.detectors.values():
        assert detector.description
        assert detector.replacement in replacements.ALL
        assert detector.patterns


@pytest.mark.parametrize("replacement", sorted(replacements.ALL))
def test_replacements_are_never_detected(scanners, backend, replacement):
    scanner = scanners.get(BUILTIN_NAMES, backend)
    for text in (
        replacement,
        f"x {replacement} y",
        f"password={replacement}",
        f"?token={replacement}&sig={replacement}",
        f"/home/{replacement}/x",
        f"{replacement}@{replacement}",
        f"{replacement}{replacement}",
    ):
        assert scanner.find(text.encode(), BufferKind.TEXT) == [], text


def test_options_reach_the_detectors():
    options = DetectorOptions(
        phone_regions=("DE",), sensitive_query_params=("ticket",), secret_names=("pin",)
    )
    detectors = builtin_detectors(options)
    scanner = Scanner([detectors["phone"], detectors["sensitive_query_params"]])
    output, _ = scanner.redact(b"?ticket=1&token=2 030 1234567", BufferKind.TEXT)
    assert output == b"?ticket=[redacted]&token=2 [phone]"
    pin = Scanner([detectors["secret_assignment"]])
    assert pin.redact(b"pin=1234", BufferKind.TEXT)[0] == b"pin=[secret]"


def test_bad_options_are_refused():
    with pytest.raises(ValueError, match="phone region"):
        builtin_detectors(DetectorOptions(phone_regions=("ZZ",)))

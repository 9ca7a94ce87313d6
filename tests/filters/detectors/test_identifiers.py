"""UUIDs: found when the admin turns the detector on, left alone by default."""

from __future__ import annotations

import pytest

from filters.detectors.identifiers import uuid
from filters.detectors.registry import DEFAULT_ENABLED

UUID = "123e4567-e89b-12d3-a456-426614174000"

UUID_CASES = [
    pytest.param(f"id {UUID}.", "id [uuid].", id="lower"),
    pytest.param(UUID.upper(), "[uuid]", id="upper"),
    pytest.param(f"{{{UUID}}}", "{[uuid]}", id="braced"),
    pytest.param(f"urn:uuid:{UUID}", "urn:uuid:[uuid]", id="urn"),
]

UUID_NEGATIVES = [
    pytest.param("123e4567-e89b-12d3-a456-42661417400", id="short-last-group"),
    pytest.param("123e4567-e89b-12d3-a456-4266141740001", id="long-last-group"),
    pytest.param(f"x-{UUID}-y", id="inside-longer-id"),
    pytest.param("123e4567e89b12d3a456426614174000", id="no-dashes"),
    pytest.param("[uuid]", id="own-replacement"),
]


@pytest.mark.parametrize(("text", "expected"), UUID_CASES)
def test_uuid_text(redact_text, text, expected):
    assert redact_text(text, "uuid") == expected


@pytest.mark.parametrize(("text", "expected"), UUID_CASES)
def test_uuid_json(redact_json, text, expected):
    assert redact_json({"id": text}, "uuid") == {"id": expected}


@pytest.mark.parametrize("text", UUID_NEGATIVES)
def test_uuid_negatives(redact_text, text):
    assert redact_text(text, "uuid") == text


def test_uuid_is_off_by_default(redact_text):
    assert uuid().default_enabled is False
    assert "uuid" not in DEFAULT_ENABLED
    assert redact_text(f"anonymousId {UUID}") == f"anonymousId {UUID}"

"""Format name -> codec: the one place the proxy turns a route's format into code."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

from filters.outcome import PayloadError
from proxy.codecs import detect
from proxy.codecs.base import CodecContext, CodecResult
from proxy.codecs.binary import scrub_binary
from proxy.codecs.form import scrub_form
from proxy.codecs.json_body import scrub_json
from proxy.codecs.multipart import scrub_multipart
from proxy.codecs.ndjson import scrub_ndjson
from proxy.codecs.otlp import scrub_otlp_json, scrub_otlp_protobuf
from proxy.codecs.sentry import scrub_envelope, scrub_store
from proxy.codecs.text import scrub_text_body

ScrubBody = Callable[[bytes, CodecContext], CodecResult]


@dataclass(frozen=True, slots=True)
class Codec:
    """A wire format: its name and its scrub function (satisfies ``FormatCodec``)."""

    name: str
    scrub: ScrubBody


CODECS: Mapping[str, Codec] = MappingProxyType(
    {
        codec.name: codec
        for codec in (
            Codec(detect.JSON, scrub_json),
            Codec(detect.NDJSON, scrub_ndjson),
            Codec(detect.FORM, scrub_form),
            Codec(detect.MULTIPART, scrub_multipart),
            Codec(detect.SENTRY_ENVELOPE, scrub_envelope),
            Codec(detect.SENTRY_STORE, scrub_store),
            Codec(detect.OTLP_JSON, scrub_otlp_json),
            Codec(detect.OTLP_PROTOBUF, scrub_otlp_protobuf),
            Codec(detect.TEXT, scrub_text_body),
            Codec(detect.BINARY, scrub_binary),
        )
    }
)

FORMATS: tuple[str, ...] = tuple(CODECS)
"""Every format name a route may name (and ``detect_format`` may return)."""


def scrub_body(fmt: str, body: bytes, ctx: CodecContext) -> CodecResult:
    """Scrub ``body`` (already content-decoded) as format ``fmt``.

    Raises ``PayloadError`` / ``LimitExceeded`` for bodies the codec cannot handle and
    for an unknown format name (settings validation should have caught that).
    """
    codec = CODECS.get(fmt)
    if codec is None:
        raise PayloadError("registry", "unknown format")
    return codec.scrub(body, ctx)

"""``multipart/form-data`` bodies.

Text parts (no ``filename``) form one fields document, exactly like a form
(:mod:`proxy.codecs.fields`): ``{name: value}``, repeated names as lists, JSON-looking and
base64-JSON values decoded; events path ``"<name>[*]"`` for a field holding a list of
event objects, else ``None``. File parts (with a ``filename``) and text parts that are
not UTF-8 are attachments, handled per ``ctx.attachments``: dropped, kept as they are, or
kept with the filename scrubbed via ``ctx.scrub_text``.

The body is rebuilt with the same boundary and each part's own header lines (those of
text parts with detector hits redacted); the preamble and epilogue (ignored by every
receiver, so only a place to hide data) are left out. A changed value that would contain
the boundary delimiter is refused.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import unquote

from filters.outcome import LimitExceeded, Outcome, PayloadError
from proxy.codecs.base import AttachmentMode, CodecContext, CodecResult
from proxy.codecs.fields import (
    FieldOutput,
    document_to_fields,
    events_path_of_fields,
    fields_to_document,
)

CODEC = "multipart"

_BOUNDARY = re.compile(r';\s*boundary\s*=\s*(?:"([^"]+)"|([^;\s]+))', re.IGNORECASE)
_BOUNDARY_CHARS = re.compile(r"[0-9A-Za-z'()+_,\-./:=? ]{0,69}[0-9A-Za-z'()+_,\-./:=?]")
_PARAMETER = re.compile(r';\s*([^=;\s]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^;]*)')
_FILENAME_PARAMETERS = re.compile(
    r';\s*filename\*?\s*=\s*(?:"(?:[^"\\]|\\.)*"|[^;]*)', re.IGNORECASE
)
_CRLF = b"\r\n"


@dataclass(slots=True)
class Part:
    """One part: its header block as received (without the blank line), its content,
    and what its Content-Disposition says."""

    header_block: bytes
    content: bytes
    name: str
    filename: str | None
    headers: dict[str, str] = field(default_factory=dict)


def scrub_multipart(body: bytes, ctx: CodecContext) -> CodecResult:
    """Scrub a multipart/form-data body; raises ``PayloadError`` when the boundary is
    missing or the body is malformed, ``LimitExceeded`` past ``ctx.limits.max_parts``."""
    boundary = boundary_of(ctx.content_type)
    parts = parse_multipart(body, boundary, max_parts=ctx.limits.max_parts)
    texts = {
        index: text for index, part in enumerate(parts) if (text := _text_of(part)) is not None
    }
    text_parts = list(texts)
    outcome = Outcome()
    new_contents: dict[int, bytes] = {}
    added: list[tuple[bytes, bytes]] = []
    if text_parts:
        fields = [(parts[index].name, texts[index]) for index in text_parts]
        document, layout = fields_to_document(fields)
        result = ctx.scrub(document, events_path_of_fields(document, layout))
        outcome.merge(result.outcome)
        if result.outcome.all_events_dropped:
            return CodecResult(b"", outcome, empty=True)
        outputs = document_to_fields(result.value, layout)
        new_contents, added = _text_contents(outputs, text_parts)
    kept = _rebuild_parts(parts, set(text_parts), new_contents, ctx, outcome) + added
    if parts and not kept:
        return CodecResult(b"", outcome, empty=True)
    return CodecResult(write_multipart(kept, boundary), outcome)


def boundary_of(content_type: str) -> bytes:
    """The boundary parameter of a multipart Content-Type (RFC 2046 characters only)."""
    match = _BOUNDARY.search(content_type or "")
    boundary = (match.group(1) or match.group(2)) if match else None
    if boundary is None or not _BOUNDARY_CHARS.fullmatch(boundary):
        raise PayloadError(CODEC, "missing or invalid boundary")
    return boundary.encode("ascii")


def parse_multipart(body: bytes, boundary: bytes, *, max_parts: int) -> list[Part]:
    """Split a body into parts; the preamble before the first delimiter is skipped.

    A delimiter after a bare line feed is refused: RFC 2046 wants CRLF, but lenient
    receivers split there too, so such a body would hold parts this parser never saw."""
    delimiter = b"--" + boundary
    if _has_bare_line_feed_delimiter(body, delimiter):
        raise PayloadError(CODEC, "boundary delimiter after a bare line feed")
    if body.startswith(delimiter):
        position = len(delimiter)
    else:
        first = body.find(_CRLF + delimiter)
        if first < 0:
            raise PayloadError(CODEC, "no boundary delimiter in body")
        position = first + 2 + len(delimiter)
    parts: list[Part] = []
    while body[position : position + 2] != b"--":
        position = _skip_delimiter_line_end(body, position)
        end = body.find(_CRLF + delimiter, position)
        if end < 0:
            raise PayloadError(CODEC, "part is not terminated by a boundary")
        if len(parts) >= max_parts:
            raise LimitExceeded(CODEC, "max_parts", "more parts than the configured limit")
        parts.append(parse_part(body[position:end]))
        position = end + 2 + len(delimiter)
    return parts


def parse_part(raw: bytes) -> Part:
    """One part's headers and content; it must carry a Content-Disposition name."""
    if raw.startswith(_CRLF):
        header_block, content = b"", raw[2:]
    else:
        separator = raw.find(_CRLF + _CRLF)
        if separator < 0:
            raise PayloadError(CODEC, "part headers are not terminated")
        header_block, content = raw[:separator], raw[separator + 4 :]
    headers = _parse_headers(header_block)
    parameters = _disposition_parameters(headers.get("content-disposition", ""))
    name = parameters.get("name")
    if name is None:
        raise PayloadError(CODEC, "part without a form-data name")
    filename = parameters.get("filename*", parameters.get("filename"))
    return Part(header_block, content, name, filename, headers)


def write_multipart(parts: list[tuple[bytes, bytes]], boundary: bytes) -> bytes:
    """Serialize ``(header_block, content)`` parts with ``boundary``; refuses content that
    contains the delimiter (the result would not parse back)."""
    delimiter = b"--" + boundary
    chunks: list[bytes] = []
    for header_block, content in parts:
        if (_CRLF + content).find(_CRLF + delimiter) >= 0:
            raise PayloadError(CODEC, "scrubbed content contains the boundary")
        chunks += (delimiter, _CRLF, header_block, _CRLF, _CRLF, content, _CRLF)
    chunks += (delimiter, b"--", _CRLF)
    return b"".join(chunks)


def _has_bare_line_feed_delimiter(body: bytes, delimiter: bytes) -> bool:
    position = body.find(b"\n" + delimiter)
    while position >= 0:
        if position == 0 or body[position - 1] != ord("\r"):
            return True
        position = body.find(b"\n" + delimiter, position + 1)
    return False


def _skip_delimiter_line_end(body: bytes, position: int) -> int:
    # RFC 2046 allows linear whitespace ("transport padding") after a delimiter.
    while body[position : position + 1] in (b" ", b"\t"):
        position += 1
    if body[position : position + 2] != _CRLF:
        raise PayloadError(CODEC, "boundary delimiter is not followed by a line end")
    return position + 2


def _parse_headers(header_block: bytes) -> dict[str, str]:
    headers: dict[str, str] = {}
    if not header_block:
        return headers
    for line in header_block.split(_CRLF):
        name, colon, value = line.partition(b":")
        if not colon or not name.strip():
            raise PayloadError(CODEC, "malformed part header line")
        headers[_decode_header(name).strip().lower()] = _decode_header(value).strip()
    return headers


def _decode_header(raw: bytes) -> str:
    # Browsers write non-ASCII filenames as raw UTF-8; anything else is read as Latin-1.
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def _disposition_parameters(value: str) -> dict[str, str]:
    parameters: dict[str, str] = {}
    for match in _PARAMETER.finditer(value):
        key, raw = match.group(1).lower(), match.group(2).strip()
        if raw.startswith('"'):
            raw = re.sub(r"\\(.)", r"\1", raw[1:-1])
        if key == "filename*":
            raw = _decode_extended(raw)
        parameters[key] = raw
    return parameters


def _decode_extended(value: str) -> str:
    """RFC 5987 ``charset'lang'percent-encoded`` (only UTF-8 is expected from clients)."""
    charset, _, rest = value.partition("'")
    _, _, encoded = rest.partition("'")
    try:
        return unquote(encoded, encoding=charset or "utf-8", errors="strict")
    except (LookupError, UnicodeDecodeError):
        raise PayloadError(CODEC, "undecodable extended filename") from None


def _text_of(part: Part) -> str | None:
    """The part's text when it is a text field, ``None`` for a file or binary part."""
    if part.filename is not None:
        return None
    try:
        return part.content.decode("utf-8")
    except UnicodeDecodeError:
        return None


def _text_contents(
    outputs: list[FieldOutput], text_parts: list[int]
) -> tuple[dict[int, bytes], list[tuple[bytes, bytes]]]:
    """New content per part index, and new parts for fields the engine added."""
    contents: dict[int, bytes] = {}
    added: list[tuple[bytes, bytes]] = []
    for output in outputs:
        if output.slot.index < 0:
            added.append((_added_header(output.slot.name), output.text.encode("utf-8")))
        else:
            contents[text_parts[output.slot.index]] = output.text.encode("utf-8")
    return contents, added


def _added_header(name: str) -> bytes:
    quoted = name.replace('"', "%22").replace("\r", "%0D").replace("\n", "%0A")
    return f'Content-Disposition: form-data; name="{quoted}"'.encode()


def _rebuild_parts(
    parts: list[Part],
    text_parts: set[int],
    new_contents: dict[int, bytes],
    ctx: CodecContext,
    outcome: Outcome,
) -> list[tuple[bytes, bytes]]:
    rebuilt: list[tuple[bytes, bytes]] = []
    for index, part in enumerate(parts):
        if index in text_parts:
            if index in new_contents:  # a text field the engine removed is left out
                header_block = _scrub_header_block(part.header_block, ctx, outcome)
                rebuilt.append((header_block, new_contents[index]))
            continue
        attachment = _scrub_attachment(part, ctx, outcome)
        if attachment is not None:
            rebuilt.append(attachment)
    return rebuilt


def _scrub_header_block(header_block: bytes, ctx: CodecContext, outcome: Outcome) -> bytes:
    """A text part's header lines with detector hits redacted: besides the field name
    (already scrubbed as a document key), a client may put anything there."""
    try:
        text, charset = header_block.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        text, charset = header_block.decode("latin-1"), "latin-1"
    scrubbed, header_outcome = ctx.scrub_text(text)
    if scrubbed == text:
        return header_block
    outcome.merge(header_outcome)
    return scrubbed.encode(charset, "replace")


def _scrub_attachment(
    part: Part, ctx: CodecContext, outcome: Outcome
) -> tuple[bytes, bytes] | None:
    if ctx.attachments is AttachmentMode.DROP:
        return None
    if ctx.attachments is AttachmentMode.KEEP or part.filename is None:
        return part.header_block, part.content
    filename, filename_outcome = ctx.scrub_text(part.filename)
    outcome.merge(filename_outcome)
    return _with_filename(part.header_block, filename), part.content


def _with_filename(header_block: bytes, filename: str) -> bytes:
    """The header block with Content-Disposition's filename (and filename*) replaced."""
    quoted = filename.replace('"', "%22").replace("\r", "%0D").replace("\n", "%0A")
    lines = header_block.split(_CRLF)
    for number, line in enumerate(lines):
        name, _, value = line.partition(b":")
        if name.strip().lower() != b"content-disposition":
            continue
        text = _FILENAME_PARAMETERS.sub("", _decode_header(value).strip())
        lines[number] = f'{_decode_header(name)}: {text}; filename="{quoted}"'.encode()
    return _CRLF.join(lines)

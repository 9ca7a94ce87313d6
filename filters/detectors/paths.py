"""User names inside home directory paths."""

from __future__ import annotations

import re
from typing import Final

from filters.detectors import replacements
from filters.detectors.base import Detector, Span
from filters.detectors.context import ALNUM, WHITESPACE, continues_before, framed

_UNIX_NAME: Final = rb"A-Za-z0-9._@+-"
# Windows user names may hold spaces and non-ASCII letters; the separators and the
# characters Windows forbids in names end them.
_WINDOWS_STOP: Final = rb"\\/:*?\"<>|" + WHITESPACE
# "\", "\\" (JSON-escaped, or escaped in the text itself), "\\\\" (both) or "/".
_WINDOWS_SEPARATOR: Final = rb"(?:\\{1,4}|/)"
_HOME_PATTERNS: Final = (
    framed(rb"/(?:home|Users)/[" + _UNIX_NAME + rb"]+", trail=rb"[^" + _UNIX_NAME + rb"]"),
    # The candidate is "C:\Users\" and its trail byte is the first letter of the name; the
    # validator reads the name (matching it here made hyperscan ~3x slower).
    framed(
        rb"[A-Za-z]:" + _WINDOWS_SEPARATOR + rb"[Uu][Ss][Ee][Rr][Ss]" + _WINDOWS_SEPARATOR,
        trail=rb"[^" + _WINDOWS_STOP + rb"]",
    ),
)
# Up to three more words are read, and kept only when a path separator follows.
_WINDOWS_NAME: Final = re.compile(
    rb"[^" + _WINDOWS_STOP + rb"]+(?: [^" + _WINDOWS_STOP + rb"]+){0,3}"
)
_NOT_PERSONAL: Final = frozenset(
    {b"shared", b"public", b"default", b"default user", b"all users", b"defaultuser0"}
)
_PATH_CHARS: Final = ALNUM | frozenset(b"._-")


def _windows_name_end(buffer: bytes, name_start: int) -> int:
    """A name with spaces is only trusted up to a path separator; otherwise the words
    after the first space are ordinary text (``C:\\Users\\bob is here``)."""
    match = _WINDOWS_NAME.match(buffer, name_start)
    if match is None:
        return name_start
    end = match.end()
    if buffer[end] in b"\\/":
        return end
    space = buffer.find(b" ", name_start, end)
    return end if space < 0 else space


def _validate_home_path(buffer: bytes, start: int, end: int) -> list[Span]:
    # "/home/" after a word or dot is a URL path (example.com/home/...), not a directory.
    if continues_before(buffer, start, _PATH_CHARS):
        return []
    if buffer[start] == 0x2F:  # "/home/NAME" or "/Users/NAME"
        name_start = buffer.find(b"/", start + 1, end) + 1
    else:  # "C:\Users\" then the name
        name_start = end
        end = _windows_name_end(buffer, name_start)
    name = buffer[name_start:end]
    if not name or name.lower() in _NOT_PERSONAL or replacements.is_replacement(name):
        return []
    return [(name_start, end)]


def home_path() -> Detector:
    """The user name in home directory paths: ``/home/NAME/...``, ``/Users/NAME/...``,
    ``C:\\Users\\NAME\\...`` (also with the JSON-escaped ``\\\\``). Only the name is
    replaced; shared profiles (``Public``, ``Default``, ``All Users``, ``Shared``) stay."""
    return Detector(
        name="home_path",
        patterns=_HOME_PATTERNS,
        validate=_validate_home_path,
        replacement=replacements.USER,
        description="user names in home directory paths",
    )

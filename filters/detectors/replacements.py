"""The text that replaces each kind of hit.

Every replacement is a short bracketed word that no detector finds, so scrubbing twice
gives the same bytes as scrubbing once. Validators that capture a free-form value (the
value of ``password=`` or of ``?token=``) skip a value that already is a replacement.
"""

from __future__ import annotations

from typing import Final

EMAIL: Final = "[email]"
PHONE: Final = "[phone]"
CARD: Final = "[card]"
IBAN: Final = "[iban]"
SSN: Final = "[ssn]"
IP: Final = "[ip]"
MAC: Final = "[mac]"
JWT: Final = "[jwt]"
CREDENTIAL: Final = "[credential]"
SECRET: Final = "[secret]"
USERINFO: Final = "[userinfo]"
REDACTED: Final = "[redacted]"
USER: Final = "[user]"
UUID: Final = "[uuid]"
ORG: Final = "[org]"

ALL: Final = frozenset(
    {EMAIL, PHONE, CARD, IBAN, SSN, IP, MAC, JWT, CREDENTIAL, SECRET, USERINFO, REDACTED}
    | {USER, UUID, ORG}
)
"""Every built-in replacement."""

ALL_BYTES: Final = frozenset(text.encode() for text in ALL)


def is_replacement(value: bytes) -> bool:
    """True when ``value`` is exactly one of the built-in replacements."""
    return value in ALL_BYTES


def holds_replacement(value: bytes) -> bool:
    """True when ``value`` contains a built-in replacement. A free-form value (after
    ``password=`` or ``?token=``) that does was scrubbed by an earlier pass, when it was
    read with other boundaries; reading it again would replace the replacement."""
    return b"[" in value and any(token in value for token in ALL_BYTES)

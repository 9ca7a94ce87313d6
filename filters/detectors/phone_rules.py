"""Phone number validity from libphonenumber's metadata, fast enough for the hot path.

``phonenumbers.parse`` + ``is_valid_number`` cost 40-80 µs per call (more for an invalid
``+1`` number, which is tried against every NANP region); a telemetry batch can hold dozens
of phone-shaped candidates. This module compiles the same metadata once into plain regular
expressions and answers "is this a valid number?" in a few microseconds, following the
library's own rules:

* a number is valid for a region when it matches the region's general pattern and one of
  its number-type patterns (fixed line, mobile, toll free ...), each with its possible
  lengths;
* a calling code shared by several regions (``+1``) picks the region by leading digits
  where the metadata has them, else accepts the first region the number is valid for;
* a national prefix (``0`` in ``+44 (0)20 ...`` or ``020 ...``) is stripped with the
  region's ``national_prefix_for_parsing`` rule. Where the library would keep the prefix
  because the stripped number is too short, this module accepts either form, so it can
  only find more numbers than the library, never fewer.

The table is built once per process on first use (at plan compile time, ~0.2 s) and is
read-only afterwards.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

import phonenumbers
from phonenumbers.phonemetadata import PhoneMetadata, PhoneNumberDesc

_NON_GEOGRAPHIC = "001"
_MAX_NATIONAL_NUMBER = 17  # libphonenumber's limit for any national significant number


@dataclass(frozen=True, slots=True)
class _NumberPattern:
    """One ``PhoneNumberDesc``: possible lengths (empty: any) and a full-match pattern."""

    lengths: frozenset[int]
    pattern: re.Pattern[str]

    def matches(self, national_number: str) -> bool:
        if self.lengths and len(national_number) not in self.lengths:
            return False
        return self.pattern.fullmatch(national_number) is not None


@dataclass(frozen=True, slots=True)
class _NationalPrefix:
    """A region's ``national_prefix_for_parsing`` rule (with its optional transform)."""

    pattern: re.Pattern[str]
    transform: str | None

    def strip(self, digits: str) -> str | None:
        """The number without its national prefix, or None when it has none."""
        match = self.pattern.match(digits)
        if match is None:
            return None
        groups = match.groups()
        if self.transform and groups and groups[-1] is not None:
            return self.pattern.sub(_python_template(self.transform), digits, count=1)
        return digits[match.end() :]


@dataclass(frozen=True, slots=True)
class _RegionRules:
    general: _NumberPattern
    types: tuple[_NumberPattern, ...]
    leading_digits: re.Pattern[str] | None
    _types_by_length: dict[int, re.Pattern[str]] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )
    """Per number length, the number-type patterns that allow it as one alternation:
    one ``fullmatch`` instead of one per type (built on first use; lengths are few)."""

    def is_valid(self, national_number: str) -> bool:
        if not self.general.matches(national_number):
            return False
        types = self._types_by_length.get(len(national_number))
        if types is None:
            types = self._types_of_length(len(national_number))
        return types.fullmatch(national_number) is not None

    def _types_of_length(self, length: int) -> re.Pattern[str]:
        allowing = [kind for kind in self.types if not kind.lengths or length in kind.lengths]
        types = _any_of(kind.pattern.pattern for kind in allowing)
        self._types_by_length[length] = types
        return types


@dataclass(frozen=True, slots=True)
class _CallingCodeRules:
    """The regions sharing one calling code, plus one pattern that any valid number of
    any of them must match (a quick way to reject, e.g., ``+1 555 ...`` without trying
    all 25 NANP regions)."""

    regions: tuple[_RegionRules, ...]
    any_type: re.Pattern[str]
    longest: int
    """The most digits a national significant number of this calling code can have."""

    def is_valid(self, national_number: str) -> bool:
        if self.any_type.fullmatch(national_number) is None:
            return False
        if len(self.regions) == 1:
            return self.regions[0].is_valid(national_number)
        for region in self.regions:
            if region.leading_digits is not None:
                if region.leading_digits.match(national_number):
                    return region.is_valid(national_number)
            elif region.is_valid(national_number):
                return True
        return False


@dataclass(frozen=True, slots=True)
class PhoneRules:
    """Validity of national significant numbers per calling code, plus per-region facts."""

    regions_by_calling_code: Mapping[int, _CallingCodeRules]
    national_prefix_by_calling_code: Mapping[int, _NationalPrefix]
    calling_code_by_region: Mapping[str, int]
    national_prefix_by_region: Mapping[str, _NationalPrefix]
    _code_by_prefix: Mapping[str, int] = field(init=False, repr=False, compare=False)
    """:meth:`calling_code` of every digit string of up to three digits (all it reads)."""
    _longest_by_code: Mapping[int, int] = field(init=False, repr=False, compare=False)
    """:meth:`longest_with_code` of every calling code."""

    def __post_init__(self) -> None:
        table: dict[str, int] = {}
        for size in (1, 2, 3):
            for number in range(10**size):
                prefix = f"{number:0{size}d}"
                for code_size in range(1, size + 1):
                    if (code := int(prefix[:code_size])) in self.regions_by_calling_code:
                        table[prefix] = code
                        break
        object.__setattr__(self, "_code_by_prefix", MappingProxyType(table))
        longest = {
            code: len(str(code)) + rules.longest + 1
            for code, rules in self.regions_by_calling_code.items()
        }
        object.__setattr__(self, "_longest_by_code", MappingProxyType(longest))

    def is_valid(self, calling_code: int, national_number: str) -> bool:
        """Whether ``+<calling_code> <national_number>`` is a valid number, as
        ``phonenumbers.is_valid_number`` decides for a parsed number."""
        rules = self.regions_by_calling_code.get(calling_code)
        return rules is not None and rules.is_valid(national_number)

    def calling_code(self, digits: str) -> int | None:
        """The calling code that ``digits`` (what follows a ``+``) start with, if any.
        Calling codes are a prefix code, so at most one can match."""
        return self._code_by_prefix.get(digits[:3])

    def longest_international(self, digits: str) -> int | None:
        """The most digits (calling code included) an international number starting
        with ``digits`` can have, or None when no calling code matches. One extra digit
        is allowed for a national prefix written after the code: ``+44 (0)20 ...``."""
        code = self.calling_code(digits)
        if code is None:
            return None
        return self.longest_with_code(code)

    def longest_with_code(self, code: int) -> int:
        """:meth:`longest_international` for a known calling code."""
        return self._longest_by_code[code]

    def is_valid_international(self, digits: str) -> bool:
        """Whether the digits after a ``+`` form a valid number (calling code first)."""
        code = self.calling_code(digits)
        return code is not None and self.is_valid_with_code(code, digits)

    def is_valid_with_code(self, code: int, digits: str) -> bool:
        """:meth:`is_valid_international` for digits known to start with ``code``
        (:meth:`_is_valid_either`, unrolled: this runs for every ``+`` candidate)."""
        national = digits[len(str(code)) :]
        rules = self.regions_by_calling_code.get(code)
        if rules is None:
            return False
        if rules.is_valid(national):
            return True
        prefix = self.national_prefix_by_calling_code.get(code)
        stripped = prefix.strip(national) if prefix is not None else None
        return stripped is not None and bool(stripped) and rules.is_valid(stripped)

    def is_valid_national(self, digits: str, region: str) -> bool:
        """Whether ``digits`` dialled inside ``region`` form a valid number."""
        calling_code = self.calling_code_by_region.get(region)
        if calling_code is None:
            return False
        prefix = self.national_prefix_by_region.get(region)
        return self._is_valid_either(calling_code, digits, prefix)

    def _is_valid_either(
        self, calling_code: int, digits: str, prefix: _NationalPrefix | None
    ) -> bool:
        if self.is_valid(calling_code, digits):
            return True
        stripped = prefix.strip(digits) if prefix is not None else None
        return stripped is not None and stripped != "" and self.is_valid(calling_code, stripped)


def _any_of(patterns: Iterable[str]) -> re.Pattern[str]:
    """One pattern that fully matches what any of ``patterns`` fully matches (none: nothing)."""
    return re.compile("|".join(f"(?:{pattern})" for pattern in patterns) or "(?!)")


def _python_template(rule: str) -> str:
    """libphonenumber transform rules use ``$1``; Python's ``re.sub`` wants ``\\1``."""
    return re.sub(r"\$(\d)", r"\\\1", rule)


def _number_pattern(desc: PhoneNumberDesc | None) -> _NumberPattern | None:
    if desc is None or not desc.national_number_pattern:
        return None
    return _NumberPattern(
        lengths=frozenset(desc.possible_length or ()),
        pattern=re.compile(desc.national_number_pattern),
    )


def _region_rules(metadata: PhoneMetadata) -> _RegionRules | None:
    general = _number_pattern(metadata.general_desc)
    if general is None:
        return None
    descs = (
        metadata.premium_rate,
        metadata.toll_free,
        metadata.shared_cost,
        metadata.voip,
        metadata.personal_number,
        metadata.pager,
        metadata.uan,
        metadata.voicemail,
        metadata.fixed_line,
        metadata.mobile,
    )
    types = tuple(pattern for pattern in map(_number_pattern, descs) if pattern is not None)
    leading = re.compile(metadata.leading_digits) if metadata.leading_digits else None
    return _RegionRules(general=general, types=types, leading_digits=leading)


def _national_prefix(metadata: PhoneMetadata) -> _NationalPrefix | None:
    if not metadata.national_prefix_for_parsing:
        return None
    return _NationalPrefix(
        pattern=re.compile(metadata.national_prefix_for_parsing),
        transform=metadata.national_prefix_transform_rule,
    )


def _metadata_for(calling_code: int, region: str) -> PhoneMetadata | None:
    if region == _NON_GEOGRAPHIC:
        return PhoneMetadata.metadata_for_nongeo_region(calling_code, None)
    return PhoneMetadata.metadata_for_region(region, None)


def _calling_code_rules(calling_code: int, regions: Iterable[str]) -> _CallingCodeRules | None:
    metadata = (_metadata_for(calling_code, region) for region in regions)
    compiled = tuple(
        rules
        for rules in (_region_rules(m) for m in metadata if m is not None)
        if rules is not None
    )
    if not compiled:
        return None
    any_type = _any_of(sorted({kind.pattern.pattern for rules in compiled for kind in rules.types}))
    lengths = [length for rules in compiled for length in rules.general.lengths]
    longest = max(lengths, default=_MAX_NATIONAL_NUMBER)
    return _CallingCodeRules(regions=compiled, any_type=any_type, longest=longest)


@functools.cache
def phone_rules() -> PhoneRules:
    """The compiled table (built once per process, immutable)."""
    by_code: dict[int, _CallingCodeRules] = {}
    prefix_by_code: dict[int, _NationalPrefix] = {}
    code_by_region: dict[str, int] = {}
    prefix_by_region: dict[str, _NationalPrefix] = {}
    for calling_code, regions in phonenumbers.COUNTRY_CODE_TO_REGION_CODE.items():
        if (compiled := _calling_code_rules(calling_code, regions)) is not None:
            by_code[calling_code] = compiled
        main = _metadata_for(calling_code, regions[0])
        if main is not None and (prefix := _national_prefix(main)) is not None:
            prefix_by_code[calling_code] = prefix
        for region in regions:
            metadata = _metadata_for(calling_code, region)
            if region == _NON_GEOGRAPHIC or metadata is None:
                continue
            code_by_region[region] = calling_code
            if (prefix := _national_prefix(metadata)) is not None:
                prefix_by_region[region] = prefix
    return PhoneRules(
        regions_by_calling_code=MappingProxyType(by_code),
        national_prefix_by_calling_code=MappingProxyType(prefix_by_code),
        calling_code_by_region=MappingProxyType(code_by_region),
        national_prefix_by_region=MappingProxyType(prefix_by_region),
    )

"""How LAVA's vocabulary is spelled in Ground Truth: label names, attribute names, value codes.

Ground Truth allows at most 16 characters for label names, attribute names and enum values
(``limits.py``). Most LAVA values fit; the few that do not get a short code here, the one place
the mapping lives, and every conversion in both directions goes through this module.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Final, TypeVar

from shared.groundtruth.limits import MAX_ENUM_VALUE
from shared.taxonomy.vocabulary import Occlusion, SignType

E = TypeVar("E", bound=StrEnum)

# LAVA value -> Ground Truth code, only where the LAVA value is longer than 16 characters.
SHORT_CODES: Final[dict[StrEnum, str]] = {
    Occlusion.PARTIALLY_OCCLUDED: "partially",
    SignType.RED_AND_WHITE_REGULATORY: "red-white reg",
    SignType.HIGHWAY_CONSTRUCTION_AND_MAINTENANCE: "hwy construction",
}
_FROM_CODE: Final[dict[tuple[type[StrEnum], str], StrEnum]] = {
    (type(member), code): member for member, code in SHORT_CODES.items()
}

# Booleans are offered to workers as a two-value enum.
YES, NO = "yes", "no"


class UnknownCode(ValueError):
    """A value Ground Truth returned that maps to no LAVA value."""


def to_gt(value: StrEnum) -> str:
    """The Ground Truth spelling of a LAVA enum value."""
    return SHORT_CODES.get(value, value.value)


def from_gt(enum: type[E], code: str) -> E:
    """The LAVA value of a Ground Truth code (the long LAVA spelling is accepted too)."""
    member = _FROM_CODE.get((enum, code))
    if member is not None:
        return member  # type: ignore[return-value]
    try:
        return enum(code)
    except ValueError:
        allowed = ", ".join(to_gt(m) for m in enum)
        raise UnknownCode(f"{code!r} is not a {enum.__name__} (one of: {allowed})") from None


def gt_values(enum: type[StrEnum]) -> list[str]:
    return [to_gt(member) for member in enum]


def bool_to_gt(value: bool) -> str:
    return YES if value else NO


def bool_from_gt(code: object) -> bool:
    if isinstance(code, bool):
        return code
    text = str(code).strip().lower()
    if text in {YES, "true", "1"}:
        return True
    if text in {NO, "false", "0"}:
        return False
    raise UnknownCode(f"{code!r} is not yes/no")


def _check() -> None:
    # The mapping must be reversible and every code must fit.
    codes = list(SHORT_CODES.items())
    for member, code in codes:
        assert len(code) <= MAX_ENUM_VALUE, code
        assert len(member.value) > MAX_ENUM_VALUE, member
        for other in type(member):
            assert other is member or to_gt(other) != code, (member, other)


_check()

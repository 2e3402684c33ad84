"""The PS3.15 Annex E options node.toml chooses (``[handlers.deidentify] options``).

Each option is a column of Table E.1-1 (:data:`stegonode.dicom.profile.OPTION_COLUMNS`) and a
code of CID 7050, which the De-identification Method Code Sequence lists after 113100 for every
option applied. "A requirement for an Option, when implemented, overrides any requirement for the
underlying Profile" (PS3.15 E.1.1): where an applied option names an action for an attribute,
that action is taken, the date options first (a calibration date is shifted, not kept, when
both dates and device identity are retained).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from pydantic import Field, field_validator
from pydicom.tag import BaseTag

from stegonode.codecs.settings import Names, Settings
from stegonode.dicom.profile import OPTION_COLUMNS, OPTION_REPEATING_GROUPS
from stegonode.errors import ConfigError


@dataclass(frozen=True)
class Option:
    name: str  # in node.toml
    column: str  # Table E.1-1's key (innolitics/dicom-standard)
    code: str  # CID 7050
    meaning: str


# In the order their actions take precedence; the method code sequence lists them by code.
OPTIONS: dict[str, Option] = {option.name: option for option in (
    Option("retain_longitudinal_modified_dates", "rtnLongModifDatesOpt", "113107",
           "Retain Longitudinal Temporal Information Modified Dates Option"),
    Option("retain_longitudinal_full_dates", "rtnLongFullDatesOpt", "113106",
           "Retain Longitudinal Temporal Information Full Dates Option"),
    Option("retain_patient_characteristics", "rtnPatCharsOpt", "113108", "Retain Patient Characteristics Option"),
    Option("retain_device_identity", "rtnDevIdOpt", "113109", "Retain Device Identity Option"),
    Option("retain_uids", "rtnUIDsOpt", "113110", "Retain UIDs Option"),
    Option("retain_safe_private", "rtnSafePrivOpt", "113111", "Retain Safe Private Option"),
    Option("retain_institution_identity", "rtnInstIdOpt", "113112", "Retain Institution Identity Option"),
    Option("clean_descriptors", "cleanDescOpt", "113105", "Clean Descriptors Option"),
    Option("clean_structured_content", "cleanStructContOpt", "113104", "Clean Structured Content Option"),
    Option("clean_graphics", "cleanGraphOpt", "113103", "Clean Graphics Option"),
)}
# TCIA's published protocol (Basic Profile with Clean Descriptors, Retain Longitudinal With
# Modified Dates, Retain Patient Characteristics, Retain Device Identity, Retain Safe Private, and
# Clean Pixel Data, which this node does not claim), plus Clean Structured Content, which the
# residual-identity check carries out as it does Clean Descriptors.
DEFAULT_OPTIONS = (
    "retain_longitudinal_modified_dates", "retain_patient_characteristics", "retain_device_identity",
    "retain_safe_private", "clean_descriptors", "clean_structured_content",
)
DEFAULT_DATE_SHIFT_DAYS = (-3650, -1)
MAX_SHIFT_DAYS = 36500


@dataclass(frozen=True)
class Policy:
    """What de-identification applies: the options, and the range of the keyed date offset."""

    options: tuple[Option, ...] = ()
    date_shift_days: tuple[int, int] = DEFAULT_DATE_SHIFT_DAYS

    @classmethod
    def from_settings(cls, settings: DeidentifySettings) -> Policy:
        """From ``[handlers.deidentify]``, validated."""
        low, high = settings.date_shift_days
        return cls(tuple(OPTIONS[name] for name in OPTIONS if name in settings.options), (low, high))

    def has(self, name: str) -> bool:
        return OPTIONS[name] in self.options

    @property
    def modified_dates(self) -> bool:
        return self.has("retain_longitudinal_modified_dates")

    @property
    def temporal_information(self) -> str:
        """Longitudinal Temporal Information Modified (0028,0303)."""
        if self.modified_dates:
            return "MODIFIED"
        return "UNMODIFIED" if self.has("retain_longitudinal_full_dates") else "REMOVED"

    def action(self, tag: BaseTag) -> str | None:
        """The action the first applied option naming ``tag`` takes ("K" or "C"), else None."""
        key = int(tag)
        for option in self.options:
            code = OPTION_COLUMNS.get(option.column, {}).get(key)
            repeating = OPTION_REPEATING_GROUPS.get(option.column, {})
            if code is None and tag.group & 0xFF00 in (0x5000, 0x6000):
                code = repeating.get(key & 0xFF000000) or repeating.get(key & 0xFF00FFFF)
            if code:
                return code
        return None


class DeidentifySettings(Settings):
    """``[handlers.deidentify]``: what admission allows (each with its risk, see
    :mod:`.admission`), the PS3.15 options applied, and the range of the keyed date offset."""

    allow_burned_in_annotation: bool = False
    allow_video: bool = False
    allow_encapsulated_documents: bool = False
    options: Names = DEFAULT_OPTIONS
    date_shift_days: Annotated[tuple[int, ...], Field(strict=False)] = DEFAULT_DATE_SHIFT_DAYS

    @field_validator("options")
    @classmethod
    def _options(cls, options: tuple[str, ...]) -> tuple[str, ...]:
        unknown = [name for name in options if name not in OPTIONS]
        if unknown:
            raise ConfigError(f"handlers.deidentify.options: unknown option {unknown[0]!r}; "
                              f"known: {', '.join(OPTIONS)}")
        if len(set(options)) != len(options):
            raise ConfigError("handlers.deidentify.options: each option may appear once")
        if {"retain_longitudinal_modified_dates", "retain_longitudinal_full_dates"} <= set(options):
            raise ConfigError("handlers.deidentify.options: retain_longitudinal_modified_dates and "
                              "retain_longitudinal_full_dates exclude each other; choose one")
        return options

    @field_validator("date_shift_days")
    @classmethod
    def _shift(cls, days: tuple[int, ...]) -> tuple[int, ...]:
        key = "handlers.deidentify.date_shift_days"
        if len(days) != 2:
            raise ConfigError(f"{key} must be two whole numbers of days [lowest, highest]")
        low, high = days
        if low > high or max(abs(low), abs(high)) > MAX_SHIFT_DAYS:
            raise ConfigError(f"{key} = {list(days)!r}: need lowest <= highest, each within "
                              f"-{MAX_SHIFT_DAYS}..{MAX_SHIFT_DAYS}")
        if low <= 0 <= high:
            raise ConfigError(f"{key} = {list(days)!r}: the range includes 0, which would keep some patients' "
                              "real dates; use retain_longitudinal_full_dates for that")
        return days

"""Keyed date shifting: every DA and DT value moved by one offset in days per patient.

PS3.15 E.3.6, Retain Longitudinal Temporal Information With Modified Dates: dates change, the
intervals between them do not. The offset comes from the node's pseudonym key and the patient's
identity (:meth:`stegonode.dicom.pseudonyms.Pseudonymizer.date_offset`), so every object of a
patient moves by the same number of days, on every receiver and worker host that shares the key,
after any restart. Times of day (TM, and the time part of DT) and a DT value's UTC offset are
kept. The original values travel sealed in the carriers (collect gathers every changed
attribute), so reveal restores them exactly.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Sequence

# A DA value: YYYYMMDD, or the ACR-NEMA form YYYY.MM.DD. A DT value: YYYY[MM[DD[rest]]], where
# rest is the time of day, fractions and an optional &ZZXX offset, kept as they are.
_DA = re.compile(r"^(\d{4})\.?(\d{2})\.?(\d{2})$")
_DT = re.compile(r"^(\d{4})(\d{2})?(\d{2})?(.*)$")


def shift_da(value: str, days: int) -> str | None:
    """``value`` moved by ``days`` (the ACR-NEMA dotted form is written back as YYYYMMDD); None
    when it is not a date this can read (the caller removes it: a value that cannot be shifted
    cannot be kept)."""
    match = _DA.match(value.strip())
    if match is None:
        return None
    try:
        day = datetime.date(*(int(part) for part in match.groups()))
        return (day + datetime.timedelta(days=days)).strftime("%Y%m%d")
    except (ValueError, OverflowError):
        return None


def shift_dt(value: str, days: int) -> str | None:
    """A DT value moved by ``days``, its time of day and UTC offset kept. A value of year or
    month precision keeps its precision: the first day of its period is moved and written back
    as precisely as it was given. None when it is not a date-time this can read."""
    text = value.strip()
    match = _DT.match(text)
    if match is None:
        return None
    year, month, day, rest = match.groups()
    if rest and day is None:
        return None  # an offset or junk after a partial date: nothing to read it as
    try:
        start = datetime.date(int(year), int(month or 1), int(day or 1))
        moved = start + datetime.timedelta(days=days)
    except (ValueError, OverflowError):
        return None
    if day is not None:
        return moved.strftime("%Y%m%d") + rest
    return moved.strftime("%Y%m" if month is not None else "%Y")


SHIFTERS = {"DA": shift_da, "DT": shift_dt}
_AS = re.compile(r"^(\d{1,3})\s*([DWMY])$", re.IGNORECASE)


def legal_age(value: str) -> str | None:
    """An Age String (AS) as PS3.5 writes it, nnnD/W/M/Y: a kept Patient's Age of "22Y" becomes
    "022Y" (the original travels in the carriers); None when it cannot be read as an age."""
    match = _AS.match(value.strip())
    if match is None:
        return None
    return f"{int(match.group(1)):03d}{match.group(2).upper()}"


def shift_values(vr: str, values: Sequence[str], days: int) -> list[str] | None:
    """Each of ``values`` (of VR DA or DT) shifted, empty ones kept empty; None if any cannot be."""
    shifter = SHIFTERS[vr]
    shifted = []
    for value in values:
        if not str(value).strip():
            shifted.append("")
            continue
        moved = shifter(str(value), days)
        if moved is None:
            return None
        shifted.append(moved)
    return shifted

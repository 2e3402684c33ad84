"""Paging of long listings (jobs, studies): page numbers from the query string, never trusted."""

from __future__ import annotations

import re
from dataclasses import dataclass

UID_PATTERN = re.compile(r"^[0-9.]{1,64}$")


@dataclass
class Page:
    number: int
    size: int
    total: int = 0

    @classmethod
    def of(cls, text: str, size: int) -> Page:
        number = int(text) if text.isdigit() and 0 < len(text) < 7 else 1
        return cls(max(number, 1), size)

    @property
    def offset(self) -> int:
        return (self.number - 1) * self.size

    @property
    def last(self) -> int:
        return max(1, -(-self.total // self.size))

    @property
    def first_shown(self) -> int:
        return min(self.offset + 1, self.total)

    @property
    def last_shown(self) -> int:
        return min(self.offset + self.size, self.total)

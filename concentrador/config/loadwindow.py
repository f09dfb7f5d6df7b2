"""A peer's automatic-load window (CPCSCC.md §4.5, enviarFichero code 6)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import time

_WINDOW = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$")
_MINUTES_PER_DAY = 24 * 60


@dataclass(frozen=True)
class LoadWindow:
    """``HH:MM-HH:MM`` in the node's time zone: half-open, start included,
    end excluded. When the end is earlier than the start the window wraps
    past midnight (``22:00-06:00``). ``24:00`` is accepted as an end, so
    ``00:00-24:00`` is the whole day.

    Stored as minutes since midnight, because ``datetime.time`` cannot hold
    24:00.
    """

    start_minute: int
    end_minute: int

    def __post_init__(self) -> None:
        if not 0 <= self.start_minute < _MINUTES_PER_DAY:
            raise ValueError(f"load window start out of range: {self.start_minute}")
        if not 0 <= self.end_minute <= _MINUTES_PER_DAY:
            raise ValueError(f"load window end out of range: {self.end_minute}")
        if self.start_minute == self.end_minute:
            raise ValueError("load window start and end are equal")

    @classmethod
    def parse(cls, text: str) -> LoadWindow:
        """Parse ``HH:MM-HH:MM``; raises ``ValueError`` with a one-line message."""
        match = _WINDOW.match(text)
        if match is None:
            raise ValueError(f"{text!r} is not HH:MM-HH:MM")
        start_h, start_m, end_h, end_m = (int(group) for group in match.groups())
        if start_h > 23 or start_m > 59:
            raise ValueError(f"{text!r}: start is not a time of day")
        if end_m > 59 or end_h > 24 or (end_h == 24 and end_m != 0):
            raise ValueError(f"{text!r}: end is not a time of day (24:00 is the latest)")
        start, end = start_h * 60 + start_m, end_h * 60 + end_m
        if start == end:
            raise ValueError(f'{text!r}: start and end are equal; use "" for no window')
        return cls(start, end)

    @property
    def wraps(self) -> bool:
        """True when the window runs past midnight."""
        return self.end_minute < self.start_minute

    def contains(self, moment: time) -> bool:
        """Whether a local time of day falls inside the window."""
        # Seconds matter at the end: 19:59:59 is inside 06:00-20:00.
        seconds = moment.hour * 3600 + moment.minute * 60 + moment.second
        start, end = self.start_minute * 60, self.end_minute * 60
        if self.wraps:
            return seconds >= start or seconds < end
        return start <= seconds < end

    def __str__(self) -> str:
        return f"{_hhmm(self.start_minute)}-{_hhmm(self.end_minute)}"


def _hhmm(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"

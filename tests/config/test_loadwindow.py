"""Load windows (enviarFichero code 6): parsing and membership."""

from __future__ import annotations

from datetime import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from concentrador.config.loadwindow import LoadWindow


def test_daytime_window_is_half_open() -> None:
    window = LoadWindow.parse("06:00-20:00")
    assert not window.contains(time(5, 59, 59))
    assert window.contains(time(6, 0))
    assert window.contains(time(19, 59, 59))
    assert not window.contains(time(20, 0))
    assert not window.wraps


def test_window_wrapping_past_midnight() -> None:
    window = LoadWindow.parse("22:30-06:00")
    assert window.wraps
    assert window.contains(time(22, 30))
    assert window.contains(time(23, 59, 59))
    assert window.contains(time(0, 0))
    assert window.contains(time(5, 59))
    assert not window.contains(time(6, 0))
    assert not window.contains(time(12, 0))
    assert not window.contains(time(22, 29, 59))


def test_end_of_day_and_whole_day() -> None:
    assert LoadWindow.parse("20:00-24:00").contains(time(23, 59, 59))
    assert not LoadWindow.parse("20:00-24:00").contains(time(0, 0))
    whole = LoadWindow.parse("00:00-24:00")
    assert all(whole.contains(time(h, m)) for h in range(24) for m in (0, 59))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("6-20", "is not HH:MM-HH:MM"),
        ("06:00", "is not HH:MM-HH:MM"),
        ("24:00-06:00", "start is not a time of day"),
        ("06:60-07:00", "start is not a time of day"),
        ("06:00-24:01", "24:00 is the latest"),
        ("06:00-25:00", "end is not a time of day"),
        ("06:00-06:00", "start and end are equal"),
    ],
)
def test_bad_windows_are_refused_with_a_reason(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        LoadWindow.parse(text)


_minutes = st.integers(0, 24 * 60 - 1)


@given(_minutes, st.integers(0, 24 * 60), st.times())
def test_contains_matches_a_minute_by_minute_reference(start: int, end: int, moment: time) -> None:
    if start == end:
        return
    window = LoadWindow.parse(f"{start // 60:02d}:{start % 60:02d}-{end // 60:02d}:{end % 60:02d}")
    # Reference: walk forward from start, minute by minute, until end.
    inside, minute = set(), start
    while minute % (24 * 60) != end % (24 * 60) or not inside:
        inside.add(minute % (24 * 60))
        minute += 1
        if len(inside) == 24 * 60:
            break
    assert window.contains(moment) == (moment.hour * 60 + moment.minute in inside)
    assert LoadWindow.parse(str(window)) == window

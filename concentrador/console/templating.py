"""Jinja2 filters of the console's templates: times, sizes, links."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

__all__ = ["FILTERS"]


def when(moment: datetime | None) -> str:
    """UTC, to the second, the same everywhere on the page."""
    if moment is None:
        return "never"
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def duration(span: timedelta) -> str:
    seconds = int(span.total_seconds())
    days, seconds = divmod(seconds, 86_400)
    hours, seconds = divmod(seconds, 3_600)
    minutes, seconds = divmod(seconds, 60)
    if days:
        return f"{days} d {hours} h"
    if hours:
        return f"{hours} h {minutes} min"
    return f"{minutes} min {seconds} s"


def size(count: int | float) -> str:
    value = float(count)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1000:
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{value:.1f} TB"


def file_link(peer: str, name: str) -> str:
    return "/file?" + urlencode({"peer": peer, "name": name})


FILTERS: dict[str, Callable[..., Any]] = {
    "when": when,
    "duration": duration,
    "size": size,
    "file_link": file_link,
}

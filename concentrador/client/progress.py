"""Progress of a one-shot transfer: a bar on a terminal, log lines otherwise.

The cycles report through :class:`Progress`; the daemon uses the silent
:class:`Progress` base itself, the CLI picks :func:`progress_for` its stream.
"""

from __future__ import annotations

import logging
import sys
import time
from typing import TextIO

__all__ = ["BarProgress", "LogProgress", "Progress", "progress_for"]

log = logging.getLogger("concentrador.client.progress")


class Progress:
    """Silent progress (the daemon). Subclasses show it."""

    def __init__(self) -> None:
        self.files_total = 0
        self.bytes_total = 0
        self.files_done = 0
        self.bytes_done = 0

    def plan(self, files: int, size: int) -> None:
        """Add work to the totals (the listing says how much there is)."""
        self.files_total += files
        self.bytes_total += size

    def advance(self, size: int) -> None:
        self.bytes_done += size
        self.changed()

    def file_done(self, name: str, what: str) -> None:
        self.files_done += 1
        self.changed()

    def changed(self) -> None:
        """Hook for subclasses."""

    def close(self) -> None:
        """Hook for subclasses."""


class LogProgress(Progress):
    """One INFO line per file: what a journal or a pipe wants."""

    def file_done(self, name: str, what: str) -> None:
        super().file_done(name, what)
        log.info("%s %s (%d/%d files)", what, name, self.files_done, self.files_total)


def _mb(size: int) -> str:
    return f"{size / 1e6:.1f}"


class BarProgress(Progress):
    """A one-line bar redrawn in place, at most ~10 times a second."""

    WIDTH = 30

    def __init__(self, stream: TextIO) -> None:
        super().__init__()
        self.stream = stream
        self._last_draw = 0.0
        self._drawn = False

    def changed(self) -> None:
        now = time.monotonic()
        if now - self._last_draw >= 0.1:
            self._last_draw = now
            self._draw()

    def _draw(self) -> None:
        total = max(self.bytes_total, 1)
        filled = min(self.WIDTH, self.WIDTH * self.bytes_done // total)
        bar = "#" * filled + "-" * (self.WIDTH - filled)
        self.stream.write(
            f"\r[{bar}] {self.files_done}/{self.files_total} files "
            f"{_mb(self.bytes_done)}/{_mb(self.bytes_total)} MB"
        )
        self.stream.flush()
        self._drawn = True

    def close(self) -> None:
        if self._drawn or self.files_total:
            self._draw()
            self.stream.write("\n")
            self.stream.flush()


def progress_for(stream: TextIO | None = None) -> Progress:
    """A bar when ``stream`` (default stderr) is a terminal, log lines otherwise."""
    stream = stream or sys.stderr
    isatty = getattr(stream, "isatty", None)
    if isatty is not None and isatty():
        return BarProgress(stream)
    return LogProgress()

"""What one collection cycle did: the summary the runner, status and CLI show."""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["CollectionSummary"]


@dataclass
class CollectionSummary:
    """What one cycle did; :meth:`line` is the status/CLI summary."""

    peer: str
    listed: int = 0
    fetched: int = 0
    bytes: int = 0
    stored: list[str] = field(default_factory=list)
    confirmed: list[str] = field(default_factory=list)
    reconfirmed: list[str] = field(default_factory=list)
    checksum_failed: list[str] = field(default_factory=list)
    vanished: list[str] = field(default_factory=list)
    waiting: list[str] = field(default_factory=list)
    not_confirmed: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    clock_offset: float | None = None
    stopped: str | None = None
    """Why the cycle stopped at a message it must not pass over (the IEC 62325-504
    cursor stays there): "code N (identification): why". Unlike ``skipped``, the
    message is still to be collected; the cycle counts as failed."""

    def line(self) -> str:
        line = self.counts()
        return f"{line}, stopped at {self.stopped}" if self.stopped else line

    def counts(self) -> str:
        """:meth:`line` without the stop."""
        parts = [
            f"{self.listed} listed",
            f"{len(self.stored)} stored",
            f"{len(self.confirmed)} confirmed",
        ]
        for label, items in (
            ("re-confirmed without fetching", self.reconfirmed),
            ("checksum failed", self.checksum_failed),
            ("vanished", self.vanished),
            ("waiting for blocks", self.waiting),
            ("not confirmed", self.not_confirmed),
            ("skipped", self.skipped),
        ):
            if items:
                parts.append(f"{len(items)} {label}")
        parts.append(f"{self.fetched} fetched ({self.bytes} bytes)")
        return ", ".join(parts)

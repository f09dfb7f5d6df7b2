"""Finding outbox files that are ready to publish, and their type.

The outbox is written by operators and their tools, so a file may be
half-copied, oddly named or in the wrong place. This module answers, without
touching the file's content: which files are candidates, has a candidate
stopped changing, and what is its type (CPCSCC.md §7 Decision: the
``outbox/<TYPE>/`` folder first, else the prefix table).
"""

from __future__ import annotations

import os
import stat
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from concentrador.protocol import FileTypeError, TypeClassifier, normalise_type_id
from concentrador.spool.layout import SpoolState, is_temp_name

__all__ = [
    "OutboxFile",
    "SettleTracker",
    "classify_outbox_file",
    "outbox_file",
    "scan_outbox",
]


@dataclass(frozen=True, slots=True)
class OutboxFile:
    """A regular file in ``outbox/`` or ``outbox/<FOLDER>/`` as seen by one ``stat``."""

    path: Path
    name: str
    folder: str | None  # the subfolder it was dropped in, None directly in outbox/
    size: int
    mtime_ns: int
    inode: int

    @property
    def relative(self) -> str:
        """``outbox/[FOLDER/]NAME``: how the ledger and the operator refer to it."""
        parts = [SpoolState.OUTBOX.value, *([self.folder] if self.folder else []), self.name]
        return "/".join(parts)

    @property
    def signature(self) -> tuple[int, int, int]:
        """What must not change while the file settles and while it is published."""
        return (self.size, self.mtime_ns, self.inode)


def _from_stat(path: Path, folder: str | None, st: os.stat_result) -> OutboxFile:
    return OutboxFile(path, path.name, folder, st.st_size, st.st_mtime_ns, st.st_ino)


def _regular_files(folder: Path) -> Iterable[os.DirEntry[str]]:
    try:
        entries = list(os.scandir(folder))
    except (FileNotFoundError, NotADirectoryError):
        return []
    # Symlinks are skipped on purpose: publishing follows a link out of the
    # spool, and archiving would move the link, not the data.
    return sorted(
        (e for e in entries if not is_temp_name(e.name) and e.is_file(follow_symlinks=False)),
        key=lambda e: e.name,
    )


def scan_outbox(outbox: Path) -> list[OutboxFile]:
    """Candidate files: ``outbox/NAME`` and ``outbox/<FOLDER>/NAME``, sorted.

    Dotfiles and temp suffixes (``*.tmp``, ``*.part``, ...) are skipped, as
    are deeper folders (only one level carries meaning: the type).
    """
    found: list[OutboxFile] = []
    try:
        top = sorted(os.scandir(outbox), key=lambda e: e.name)
    except FileNotFoundError:
        return found
    for entry in top:
        if is_temp_name(entry.name):
            continue
        try:
            if entry.is_file(follow_symlinks=False):
                found.append(_from_stat(Path(entry.path), None, entry.stat(follow_symlinks=False)))
            elif entry.is_dir(follow_symlinks=False):
                for sub in _regular_files(Path(entry.path)):
                    found.append(
                        _from_stat(Path(sub.path), entry.name, sub.stat(follow_symlinks=False))
                    )
        except FileNotFoundError:
            continue  # removed while we looked: nothing to do
    return found


def outbox_file(outbox: Path, path: Path) -> OutboxFile | None:
    """``path`` as an :class:`OutboxFile`, or None when it is not a candidate.

    Not a candidate: outside ``outbox`` or deeper than one subfolder, a temp
    name, a symlink, not a regular file, or gone.
    """
    try:
        relative = Path(path).relative_to(outbox)
    except ValueError:
        return None
    parts = relative.parts
    if not 1 <= len(parts) <= 2 or any(is_temp_name(p) for p in parts):
        return None
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return None
    if not stat.S_ISREG(st.st_mode):
        return None
    if len(parts) == 2 and os.path.islink(outbox / parts[0]):
        return None  # a linked folder leads out of the spool, as scan_outbox agrees
    return _from_stat(Path(path), parts[0] if len(parts) == 2 else None, st)


def classify_outbox_file(
    candidate: OutboxFile, classifier: TypeClassifier
) -> tuple[str | None, str | None]:
    """``(type_id, None)``, or ``(None, reason)`` for a file that must not be published."""
    if candidate.folder is not None:
        try:
            return normalise_type_id(candidate.folder), None
        except FileTypeError as exc:
            # The operator chose a folder on purpose; guessing from the prefix
            # instead could publish the file under a type they did not mean.
            return None, f"folder {candidate.folder!r} is not a file type: {exc}"
    type_id = classifier.classify(candidate.name)
    if type_id is None:
        return None, (
            f"no file type for {candidate.name!r}: its prefix is not in the prefix table; "
            "add the prefix to [filetypes] or drop the file in outbox/<TYPE>/"
        )
    return type_id, None


class SettleTracker:
    """Tells when a file has stopped changing (size, mtime, inode) for a while.

    Files still being written by an operator must not be published half-way.
    The first sighting starts the clock; any change restarts it. With
    ``settle_seconds <= 0`` every file is settled at once.

    :meth:`may_start` lets the compression overlap the settle time: a file
    whose own mtime is already ``settle_seconds`` old (written, then renamed
    in) may be compressed at once, but its publication still commits only
    once it has been *seen* unchanged for ``settle_seconds`` (the deadline it
    returns), checked again after the compressor read it. A write during the
    read changes the mtime, so the publisher sees it and starts over.
    """

    def __init__(
        self,
        settle_seconds: float,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        if settle_seconds < 0:
            raise ValueError(f"settle_seconds cannot be negative ({settle_seconds})")
        self.settle_seconds = settle_seconds
        self._clock = clock
        self._wall_clock = wall_clock
        self._seen: dict[Path, tuple[tuple[int, int, int], float]] = {}

    def is_settled(self, candidate: OutboxFile) -> bool:
        """Seen unchanged for ``settle_seconds`` (the first sighting starts the clock)."""
        return self._settles_at(candidate) <= self._clock()

    def may_start(self, candidate: OutboxFile) -> float | None:
        """None: leave it for now. Else: compress it now, commit from this clock time on.

        It may start once settled, or at once when its mtime says nobody
        wrote it for ``settle_seconds`` (a clock skewed by a network file
        system can only make that guess wrong, never the commit deadline).
        """
        settles_at = self._settles_at(candidate)
        quiet_for = self._wall_clock() - candidate.mtime_ns / 1e9
        if settles_at <= self._clock() or quiet_for >= self.settle_seconds:
            return settles_at
        return None

    def _settles_at(self, candidate: OutboxFile) -> float:
        """The clock time at which ``candidate`` counts as settled; records a sighting."""
        if self.settle_seconds <= 0:
            return float("-inf")
        known = self._seen.get(candidate.path)
        if known is None or known[0] != candidate.signature:
            known = (candidate.signature, self._clock())
            self._seen[candidate.path] = known
        return known[1] + self.settle_seconds

    def forget(self, path: Path) -> None:
        self._seen.pop(path, None)

    def keep_only(self, present: Iterable[Path]) -> None:
        """Drop files no longer in the outbox (bounded memory over months)."""
        keep = set(present)
        for path in [p for p in self._seen if p not in keep]:
            del self._seen[path]

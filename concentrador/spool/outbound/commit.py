"""Staging and committing one publication, crash-safely (used by the publisher).

A publication is staged in ``.work/publish-<id>/``: ``part-k`` files (the
blocks, each fsynced) and then ``manifest.json`` (durable) that says what they
are. The ledger transaction is the commit point; :meth:`Committer.finish`
then moves the parts into place and archives the operator's original. Every
step after the commit point is idempotent, so recovery simply runs
:meth:`Committer.finish` again (see the ``publisher`` module docstring).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NamedTuple

from concentrador.protocol import BlockSplitter, block_name
from concentrador.spool.durable import (
    DurableWriter,
    durable_move,
    fsync_dir,
    write_file_durably,
)
from concentrador.spool.layout import PUBLISH_STAGING_PREFIX, PeerSpool, SpoolState
from concentrador.spool.ledger import EventKind, Ledger, NewEvent, PublishedEntry
from concentrador.spool.outbound.compress import CompressionError
from concentrador.spool.outbound.scan import OutboxFile

__all__ = [
    "MANIFEST_NAME",
    "STAGING_PREFIX",
    "BlockInfo",
    "BlockSink",
    "Committer",
    "Manifest",
    "Staged",
    "file_signature",
]

log = logging.getLogger(__name__)

STAGING_PREFIX = PUBLISH_STAGING_PREFIX
MANIFEST_NAME = "manifest.json"
MANIFEST_VERSION = 1

Manifest = dict[str, Any]
"""JSON object: version, peer, source (``outbox/...``), source_signature,
original_name, published_name, file_type, state, published_at, blocks
(``[{part, name, size, md5}]``)."""


class BlockInfo(NamedTuple):
    """One published name: the whole file, or block ``NAME.k_n``."""

    name: str
    size: int
    md5: str


def file_signature(path: Path) -> tuple[int, int, int] | None:
    """(size, mtime_ns, inode) of ``path`` without following links; None if gone."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return None
    return (st.st_size, st.st_mtime_ns, st.st_ino)


@dataclass(frozen=True, slots=True)
class Staged:
    """A file compressed into its staging folder (claimed), not yet committed."""

    candidate: OutboxFile
    file_type: str
    published_name: str
    staging: Path
    blocks: list[tuple[str, BlockInfo]]  # (part file name, block)
    commit_after: float  # monotonic clock: the end of the file's settle time

    def manifest(self, peer: str, state: SpoolState) -> Manifest:
        return {
            "version": MANIFEST_VERSION,
            "peer": peer,
            "source": self.candidate.relative,
            "source_signature": list(self.candidate.signature),
            "original_name": self.candidate.name,
            "published_name": self.published_name,
            "file_type": self.file_type,
            "state": state.value,
            "published_at": datetime.now(UTC).isoformat(),
            "blocks": [{"part": part, **block._asdict()} for part, block in self.blocks],
        }


class BlockSink:
    """Receives a compressed stream and writes one ``part-k`` file per block.

    The total size, hence the block count, is known only at the end, so parts
    get their wire names in :meth:`finish`. MD5 and size come from the
    :class:`DurableWriter` as the bytes go by: nothing is read back.
    """

    def __init__(self, staging: Path, block_size: int) -> None:
        self._staging = staging
        self._block_size = block_size
        self._writer: DurableWriter | None = None
        self.parts: list[tuple[Path, int, str]] = []
        self.reset()

    def reset(self) -> None:
        """Forget everything written so far (start the stream again)."""
        self.abort()
        for path, _size, _md5 in self.parts:
            path.unlink(missing_ok=True)
        self._splitter = BlockSplitter(self._block_size)
        self._index = 0
        self.parts = []

    def __call__(self, piece: bytes) -> None:
        for index, view in self._splitter.split_pieces(piece):
            if index != self._index:
                self._commit_current()
                self._writer = DurableWriter(self._staging)
                self._index = index
            assert self._writer is not None
            self._writer.write(view)

    def _commit_current(self) -> None:
        writer, self._writer = self._writer, None
        if writer is not None:
            path = writer.commit(self._staging / f"part-{self._index:05d}")
            self.parts.append((path, writer.size, writer.md5))

    def finish(self, published_name: str) -> list[tuple[str, BlockInfo]]:
        """Commit the last part; ``(part file name, block)`` pairs in order."""
        self._commit_current()
        count = self._splitter.finish()
        if not self.parts or count != len(self.parts):
            raise CompressionError(f"compressing {published_name} produced no usable output")
        if count == 1:
            names = [published_name]
        else:
            names = [block_name(published_name, k, count) for k in range(1, count + 1)]
        return [
            (path.name, BlockInfo(name, size, md5))
            for (path, size, md5), name in zip(self.parts, names, strict=True)
        ]

    def abort(self) -> None:
        if self._writer is not None:
            self._writer.abort()
            self._writer = None


def _history(peer: str, manifest: Manifest) -> list[NewEvent]:
    """The audit trail before publication, told by the manifest: dropped, compressed."""
    name = manifest["published_name"]
    size, mtime_ns, _inode = manifest["source_signature"]
    dropped_at = datetime.fromtimestamp(mtime_ns / 1e9, UTC)
    published_size = sum(block["size"] for block in manifest["blocks"])
    if name == manifest["original_name"]:
        how = f"already bzip2: published as it was ({published_size} bytes)"
    else:
        how = f"{size} bytes to {published_size} bytes of bzip2"
    return [
        NewEvent(peer, name, EventKind.DROPPED, f"{manifest['source']} ({size} bytes)", dropped_at),
        NewEvent(peer, name, EventKind.COMPRESSED, how),
    ]


class Committer:
    """The steps after staging: ledger record, moves, archive; and their recovery."""

    def __init__(
        self, spool: PeerSpool, ledger: Ledger, step: Callable[[str], None] | None = None
    ) -> None:
        self.spool = spool
        self.ledger = ledger
        self._step = step or (lambda _name: None)

    def write_manifest(self, staging: Path, manifest: Manifest) -> None:
        data = json.dumps(manifest, indent=1, ensure_ascii=False).encode("utf-8")
        write_file_durably(staging, staging / MANIFEST_NAME, data)

    def record(self, manifest: Manifest) -> None:
        """The commit point: one ledger transaction for all names of the file."""
        published_at = datetime.fromisoformat(manifest["published_at"])
        self.ledger.record_published(
            [
                PublishedEntry(
                    self.spool.peer,
                    block["name"],
                    manifest["published_name"],
                    manifest["file_type"],
                    block["size"],
                    block["md5"],
                    published_at,
                    manifest["state"],
                )
                for block in manifest["blocks"]
            ],
            history=_history(self.spool.peer, manifest),
        )
        self._step("ledger")

    def finish(self, staging: Path, manifest: Manifest) -> None:
        """Move the parts into place, archive the original, drop the staging folder."""
        destination = self.spool.dir(manifest["state"])
        destination.mkdir(parents=True, exist_ok=True)
        for block in manifest["blocks"]:
            part = staging / block["part"]
            if part.exists():
                durable_move(part, destination, block["name"])
                self._step("moved")
            elif not (destination / block["name"]).exists():
                log.error(
                    "block %s of %s is missing from %s and from staging",
                    block["name"],
                    manifest["published_name"],
                    destination,
                )
        self._archive(manifest)
        self._step("archived")
        shutil.rmtree(staging, ignore_errors=True)
        fsync_dir(self.spool.staging_dir)

    def _archive(self, manifest: Manifest) -> None:
        source = self.spool.base / manifest["source"]
        signature = file_signature(source)
        if signature is None:
            return  # already archived before a crash (or removed by the operator)
        if list(signature) != manifest["source_signature"]:
            log.warning(
                "%s was replaced after it was published as %s; left in place",
                manifest["source"],
                manifest["published_name"],
            )
            return
        archive = self.spool.dir(SpoolState.ARCHIVE)
        archive.mkdir(parents=True, exist_ok=True)
        name = source.name
        for attempt in range(100):
            try:
                durable_move(source, archive, name)
                return
            except FileExistsError:
                # Same name archived before: keep both, never overwrite.
                stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
                name = f"{source.name}.{stamp}" + (f".{attempt}" if attempt else "")
        log.error("could not find a free name in %s for %s", archive, source.name)

    # -- recovery ------------------------------------------------------------------
    def staging_dirs(self) -> list[Path]:
        work = self.spool.staging_dir
        if not work.is_dir():
            return []
        return sorted(p for p in work.glob(f"{STAGING_PREFIX}*") if p.is_dir())

    @staticmethod
    def read_manifest(staging: Path) -> Manifest | None:
        """The manifest, or None when the crash came before it was complete."""
        try:
            manifest = json.loads((staging / MANIFEST_NAME).read_bytes())
        except (OSError, ValueError):
            return None
        if not isinstance(manifest, dict) or manifest.get("version") != MANIFEST_VERSION:
            return None
        return manifest

    def is_committed(self, manifest: Manifest) -> bool:
        """Did this manifest's ledger transaction commit?"""
        first = manifest["blocks"][0]
        entry = self.ledger.lookup(self.spool.peer, first["name"])
        # published_at is unique to this attempt: a later publication of the
        # same bytes under the same name cannot be mistaken for this one.
        return (
            entry is not None
            and entry.md5 == first["md5"]
            and entry.original == manifest["published_name"]
            and entry.published_at == datetime.fromisoformat(manifest["published_at"])
        )

    def discard(self, staging: Path) -> None:
        shutil.rmtree(staging, ignore_errors=True)
        fsync_dir(self.spool.staging_dir)

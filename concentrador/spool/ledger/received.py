"""The SQL of the files received from peers (the ``received`` table) and their events.

Plain functions over a ``backend.Connection``, wrapped by
:class:`~concentrador.spool.ledger.ledger.Ledger` in its lock or transaction
(like ``push.py``); each change inserts its audit-trail event (``events.py``)
in the caller's transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from concentrador.protocol.filetypes import TypeClassifier
from concentrador.spool.ledger.backend import Connection, Database, lock
from concentrador.spool.ledger.events import EventKind, insert_event
from concentrador.spool.ledger.schema import from_text, to_text, utc_now

__all__ = [
    "ReceivedBatchMethods",
    "ReceivedEntry",
    "StoredFile",
    "mark_confirmed",
    "select_received",
    "select_unconfirmed",
    "upsert",
]

_COLUMNS = "peer, name, md5, size, stored_path, received_at, confirmed_at"
_STORED_STATES = ("inbox", "manual")


@dataclass(frozen=True, slots=True)
class ReceivedEntry:
    """A complete file received from a peer, and whether we confirmed it."""

    peer: str
    name: str
    md5: str
    size: int
    stored_path: str
    received_at: datetime
    confirmed_at: datetime | None


def _entry(row: tuple) -> ReceivedEntry:
    peer, name, md5, size, stored_path, received_at, confirmed_at = row
    return ReceivedEntry(
        peer,
        name,
        md5,
        size,
        stored_path,
        from_text(received_at),
        from_text(confirmed_at) if confirmed_at else None,
    )


def select_received(conn: Connection, peer: str, name: str) -> ReceivedEntry | None:
    row = conn.execute(
        f"SELECT {_COLUMNS} FROM received WHERE peer = ? AND name = ?", (peer, name)
    ).fetchone()
    return _entry(row) if row is not None else None


def select_unconfirmed(conn: Connection, peer: str) -> list[ReceivedEntry]:
    rows = conn.execute(
        f"SELECT {_COLUMNS} FROM received "
        "WHERE peer = ? AND confirmed_at IS NULL ORDER BY received_at, name",
        (peer,),
    ).fetchall()
    return [_entry(r) for r in rows]


def upsert(
    conn: Connection,
    peer: str,
    name: str,
    md5: str,
    size: int,
    stored_path: str | Path,
    *,
    received_at: datetime | None,
    blocks: int | None,
    file_type: str | None = None,
) -> None:
    """Record a stored file, its type and its events (inside the caller's transaction).

    A *different* file under the same name resets the confirmation (it is a
    new file); the same MD5 keeps it, and is a ``duplicate`` in the trail.
    """
    folder = Path(stored_path).parent.name
    state = folder if folder in _STORED_STATES else "inbox"
    at = to_text(received_at or utc_now())
    # Read-then-write: the same file stored by two replicas at once is one
    # "stored" and one "duplicate", never two "stored".
    lock(conn, "received", peer, name)
    before = conn.execute(
        "SELECT md5 FROM received WHERE peer = ? AND name = ?", (peer, name)
    ).fetchone()
    conn.execute(
        f"INSERT INTO received ({_COLUMNS}, state, file_type) "
        "VALUES (?, ?, ?, ?, ?, ?, NULL, ?, ?) "
        "ON CONFLICT (peer, name) DO UPDATE SET "
        "confirmed_at = CASE WHEN received.md5 = excluded.md5 "
        "THEN received.confirmed_at ELSE NULL END, "
        "md5 = excluded.md5, size = excluded.size, state = excluded.state, "
        "file_type = excluded.file_type, "
        "stored_path = excluded.stored_path, received_at = excluded.received_at",
        (peer, name, md5, size, str(stored_path), at, state, file_type),
    )
    if blocks is not None:
        insert_event(conn, peer, name, EventKind.REASSEMBLED, f"from {blocks} blocks")
    if before is not None and before[0] == md5:
        insert_event(conn, peer, name, EventKind.DUPLICATE, f"identical to the one in {state}/")
        return
    detail = f"in {state}/ ({size} bytes, MD5 {md5})"
    if before is not None:
        detail += "; a different file of that name was archived"
    insert_event(conn, peer, name, EventKind.STORED, detail)


def mark_confirmed(conn: Connection, peer: str, name: str, at: datetime) -> bool:
    cur = conn.execute(
        "UPDATE received SET confirmed_at = ? WHERE peer = ? AND name = ?",
        (to_text(at), peer, name),
    )
    if cur.rowcount == 0:
        return False
    insert_event(conn, peer, name, EventKind.CONFIRMED, "code 0 sent to the peer", at=at)
    return True


@dataclass(frozen=True, slots=True)
class StoredFile:
    """A whole file just stored (for :meth:`ReceivedBatchMethods.record_received_group`)."""

    name: str
    md5: str
    size: int
    stored_path: Path


class ReceivedBatchMethods:
    """:meth:`record_received_group`: a base class of
    :class:`~concentrador.spool.ledger.ledger.Ledger` (like ``cycles.CycleLogMethods``),
    whose ``ledger.py`` is at its size limit."""

    _db: Database
    classifier: TypeClassifier

    def record_received_group(self, peer: str, files: Sequence[StoredFile]) -> None:
        """``Ledger.record_received`` of each of ``files``, all in one durable
        transaction: a group commit pays the ledger's flush once, not per file."""
        with self._db.transaction() as conn:
            for file in files:
                upsert(conn, peer, file.name, file.md5, file.size, file.stored_path,
                       received_at=None, blocks=None,
                       file_type=self.classifier.classify(file.name))  # fmt: skip

"""The SQL of the audit trail: what happened to each file, in order (the ``events`` table).

Append-only: rows are inserted, never updated or deleted. A file's trail is
keyed by ``(peer, name)``, where ``name`` is the whole file's name as the
peer sees it (``NAME.bz2``, never a block name ``NAME.k_n``: block events
carry ``k/n`` in their detail). Each state-changing
:class:`~concentrador.spool.ledger.ledger.Ledger` method inserts its event
through these functions inside its own transaction, so the trail never
disagrees with the state. ``actor`` is None for the daemon itself, else who
acted (``"cli"``, ``"admin@127.0.0.1"``).

Plain functions over a ``backend.Connection``, like ``push.py``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import NamedTuple

from concentrador.spool.ledger.backend import Connection
from concentrador.spool.ledger.schema import from_text, to_text, utc_now

__all__ = [
    "EventKind",
    "FileEvent",
    "Known",
    "NewEvent",
    "has_unlisted",
    "insert_event",
    "insert_events",
    "insert_new",
    "note_fetch",
    "note_first_listing",
    "select_events",
]


class EventKind(StrEnum):
    """What happened. Outgoing files, then received ones, then operator actions."""

    DROPPED = "dropped"  # found in outbox/ (``at`` is the file's mtime)
    COMPRESSED = "compressed"  # to bzip2, or taken as it was
    PUBLISHED = "published"  # into published/ (or sending/ for a push peer), as N blocks
    LISTED = "listed"  # first listed to the peer by informacionDisponible
    FETCHED = "fetched"  # one block (or the whole file) served by recogerFichero
    PEER_CONFIRMATION = "peer_confirmation"  # code 1 or 2: the file stays published
    DELIVERED = "delivered"  # confirmed with code 0, or every block pushed
    EXPIRED = "expired"  # its publication window passed unconfirmed
    PUSH_ATTEMPT = "push_attempt"  # a failed enviarFichero (codigo, fault or error)
    FAILED = "failed"  # escalated to failed/
    BLOCK_RECEIVED = "block_received"  # block k/n stored in partial/
    REASSEMBLED = "reassembled"  # rebuilt from its n blocks
    STORED = "stored"  # a received file stored in inbox/ or manual/
    DUPLICATE = "duplicate"  # the identical file received again
    CONFIRMED = "confirmed"  # we confirmed its reception to the peer (code 0)
    REBUILD_FAILED = "rebuild_failed"  # its blocks went to failed/
    RETRIED = "retried"  # action: a failed push moved back to sending/
    REPUBLISHED = "republished"  # action: an expired file moved back to published/
    REVIEWED = "reviewed"  # action: an operator looked at it


@dataclass(frozen=True, slots=True)
class FileEvent:
    """One line of a file's audit trail."""

    id: int
    at: datetime
    peer: str
    name: str
    kind: str
    detail: str
    actor: str | None


class NewEvent(NamedTuple):
    """An event a caller hands to a ledger method, to be written in its transaction."""

    peer: str
    name: str
    kind: EventKind
    detail: str = ""
    at: datetime | None = None  # None: now
    actor: str | None = None


Known = tuple[str, int] | None
"""``(original, size)`` of a published name, when the caller has its row already."""

_INSERT = "INSERT INTO events (at, peer, name, kind, detail, actor) VALUES (?, ?, ?, ?, ?, ?)"


def insert_event(
    conn: Connection,
    peer: str,
    name: str,
    kind: EventKind | str,
    detail: str = "",
    *,
    actor: str | None = None,
    at: datetime | None = None,
) -> None:
    if conn.trail:
        conn.execute(_INSERT, (to_text(at or utc_now()), peer, name, str(kind), detail, actor))


def insert_events(
    conn: Connection,
    events: Iterable[tuple[str, str, EventKind | str, str]],
    *,
    actor: str | None = None,
    at: datetime | None = None,
) -> None:
    """Several ``(peer, name, kind, detail)`` events at one time, one statement.

    Nothing when ``conn.trail`` is False (``Ledger(trail=False)``): that
    connection writes no event, other connections to the same ledger keep
    their trail, and the state changes beside each event still run.
    """
    if not conn.trail:
        return
    when = to_text(at or utc_now())
    rows = [(when, peer, name, str(kind), detail, actor) for peer, name, kind, detail in events]
    if rows:
        conn.executemany(_INSERT, rows)


def insert_new(conn: Connection, new: Iterable[NewEvent]) -> None:
    for event in new:
        insert_event(
            conn, event.peer, event.name, event.kind, event.detail, actor=event.actor, at=event.at
        )


def select_events(conn: Connection, peer: str, name: str) -> list[FileEvent]:
    """The trail of one file, oldest first (``id`` order is insertion order)."""
    rows = conn.execute(
        "SELECT id, at, peer, name, kind, detail, actor FROM events "
        "WHERE peer = ? AND name = ? ORDER BY id",
        (peer, name),
    ).fetchall()
    return [FileEvent(i, from_text(at), p, n, k, d, a) for i, at, p, n, k, d, a in rows]


def has_unlisted(conn: Connection, peer: str) -> bool:
    """Is any published file of ``peer`` not listed yet? (a read: no write lock taken)"""
    row = conn.execute(
        "SELECT 1 FROM published WHERE peer = ? AND state = 'published' "
        "AND listed_at IS NULL LIMIT 1",
        (peer,),
    ).fetchone()
    return row is not None


def note_first_listing(conn: Connection, peer: str, remote: str | None) -> int:
    """One ``listed`` event per published file not listed before; returns how many.

    Only the first listing is an event: a peer lists every few minutes, and
    the trail must say when it could first see the file, not flood. The
    UPDATE claims the rows (listed_at NULL -> now) and says which files they
    are: two replicas listing at once write each event once (on PostgreSQL
    the second UPDATE waits for the first, then finds listed_at set).
    """
    now = utc_now()
    detail = f"to {remote}" if remote else ""
    # Rows with listed_at NULL are few (the new ones); the (peer, state)
    # index narrows the scan to what is listed at all.
    rows = conn.execute(
        "UPDATE published SET listed_at = ? "
        "WHERE peer = ? AND state = 'published' AND listed_at IS NULL RETURNING original",
        (to_text(now), peer),
    ).fetchall()
    originals = sorted({row[0] for row in rows})
    insert_events(conn, [(peer, o, EventKind.LISTED, detail) for o in originals], at=now)
    return len(originals)


def note_fetch(
    conn: Connection,
    peer: str,
    name: str,
    remote: str | None,
    *,
    known: Known = None,
) -> None:
    """A ``fetched`` event on the trail of the file that ``name`` (a block or a file) is of.

    ``known`` is ``(original, size)`` of ``name`` when the caller has just read
    its row (recogerFichero looked it up to serve it): no second SELECT then,
    about a sixth of the event's CPU. The event then names the row the file
    was served (and its size checked) by, which is what the trail should say.
    """
    if known is None:
        known = conn.execute(
            "SELECT original, size FROM published WHERE peer = ? AND name = ?", (peer, name)
        ).fetchone()
    original, size = known if known is not None else (name, None)
    what = name if name != original else "the whole file"
    sized = f" ({size} bytes)" if size is not None else ""
    by = f" by {remote}" if remote else ""
    insert_event(conn, peer, original, EventKind.FETCHED, f"{what}{sized}{by}")

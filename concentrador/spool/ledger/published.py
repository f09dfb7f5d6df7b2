"""The SQL of what we publish for (or push to) peers: the ``published`` table.

One row per listed name: a whole file, or one block ``ORIG.k_n`` of
``original``. Plain functions over a ``sqlite3.Connection``, wrapped by
:class:`~concentrador.spool.ledger.ledger.Ledger` (like ``push.py``); each
change inserts its audit-trail event (``events.py``) in the caller's transaction.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from concentrador.spool.ledger import events
from concentrador.spool.ledger.events import EventKind, NewEvent
from concentrador.spool.ledger.schema import from_text, to_text

__all__ = ["COLUMNS", "PublishedEntry", "entry", "reopen", "update_state", "upsert"]

COLUMNS = "peer, name, original, file_type, size, md5, published_at, state"

# The event a state change writes unless the caller names another.
_STATE_EVENTS = {
    "delivered": EventKind.DELIVERED,
    "expired": EventKind.EXPIRED,
    "failed": EventKind.FAILED,
    "sending": EventKind.RETRIED,
    "published": EventKind.REPUBLISHED,
}


@dataclass(frozen=True, slots=True)
class PublishedEntry:
    """One listed name (a whole file or one block ``ORIG.k_n``) for one peer."""

    peer: str
    name: str
    original: str
    file_type: str
    size: int
    md5: str
    published_at: datetime
    state: str = "published"


def entry(row: tuple) -> PublishedEntry:
    peer, name, original, file_type, size, md5, published_at, state = row
    return PublishedEntry(
        peer, name, original, file_type, size, md5, from_text(published_at), state
    )


def upsert(
    conn: sqlite3.Connection, entries: Iterable[PublishedEntry], history: Iterable[NewEvent]
) -> None:
    """Record (or refresh) names; then ``history`` and one ``published`` event per original."""
    files: dict[tuple[str, str], list[PublishedEntry]] = {}
    rows = []
    for e in entries:
        files.setdefault((e.peer, e.original), []).append(e)
        rows.append((e.peer, e.name, e.original, e.file_type, e.size, e.md5,
                     to_text(e.published_at), str(e.state)))  # fmt: skip
    conn.executemany(
        f"INSERT INTO published ({COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
        "ON CONFLICT (peer, name) DO UPDATE SET "
        "original = excluded.original, file_type = excluded.file_type, "
        "size = excluded.size, md5 = excluded.md5, listed_at = NULL, "
        "published_at = excluded.published_at, state = excluded.state",
        rows,
    )
    events.insert_new(conn, history)
    for (peer, original), names in files.items():
        first = names[0]
        size = sum(e.size for e in names)
        detail = f"{first.file_type}, {len(names)} block(s), {size} bytes, in {first.state}/"
        when = first.published_at
        events.insert_event(conn, peer, original, EventKind.PUBLISHED, detail, at=when)


def update_state(
    conn: sqlite3.Connection,
    peer: str,
    original: str,
    state: str,
    *,
    detail: str,
    actor: str | None,
    kind: EventKind | None,
) -> int:
    cur = conn.execute(
        "UPDATE published SET state = ? WHERE peer = ? AND original = ?",
        (str(state), peer, original),
    )
    if cur.rowcount:
        what = kind if kind is not None else _STATE_EVENTS.get(str(state), str(state))
        events.insert_event(conn, peer, original, what, detail, actor=actor)
    return cur.rowcount


def reopen(
    conn: sqlite3.Connection, peer: str, original: str, *, at: datetime, actor: str, reason: str
) -> int:
    """Expired → published from ``at`` (a new window, listed anew); rows changed."""
    cur = conn.execute(
        "UPDATE published SET state = 'published', published_at = ?, listed_at = NULL "
        "WHERE peer = ? AND original = ? AND state = 'expired'",
        (to_text(at), peer, original),
    )
    if cur.rowcount:
        kind = EventKind.REPUBLISHED
        events.insert_event(conn, peer, original, kind, reason, actor=actor, at=at)
    return cur.rowcount

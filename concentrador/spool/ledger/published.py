"""The SQL of what we publish for (or push to) peers: the ``published`` table.

One row per listed name: a whole file, or one block ``ORIG.k_n`` of
``original``. Plain functions over a ``backend.Connection``, wrapped by
:class:`~concentrador.spool.ledger.ledger.Ledger` (like ``push.py``); each
change inserts its audit-trail event (``events.py``) in the caller's transaction.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from concentrador.spool.ledger import codes, events
from concentrador.spool.ledger.backend import Connection, for_update
from concentrador.spool.ledger.events import EventKind, NewEvent
from concentrador.spool.ledger.schema import from_text, to_text

__all__ = [
    "COLUMNS",
    "PublishedEntry",
    "deliver",
    "entry",
    "reopen",
    "select_entries",
    "select_listing",
    "select_originals_before",
    "update_state",
    "upsert",
]

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
    conn: Connection, entries: Iterable[PublishedEntry], history: Iterable[NewEvent]
) -> None:
    """Record (or refresh) names; then ``history`` and one ``published`` event per original."""
    files: dict[tuple[str, str], list[PublishedEntry]] = {}
    rows = []
    for e in entries:
        files.setdefault((e.peer, e.original), []).append(e)
        rows.append([e.peer, e.name, e.original, e.file_type, e.size, e.md5,
                     to_text(e.published_at), str(e.state)])  # fmt: skip
    # Every recording is news for a 504 client: a new code, in the given order.
    first_code = codes.allocate(conn, len(rows)) if rows else 0
    for offset, row in enumerate(rows):
        row.append(first_code + offset)
    conn.executemany(
        f"INSERT INTO published ({COLUMNS}, code) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) "
        "ON CONFLICT (peer, name) DO UPDATE SET "
        "original = excluded.original, file_type = excluded.file_type, "
        "size = excluded.size, md5 = excluded.md5, listed_at = NULL, "
        "published_at = excluded.published_at, state = excluded.state, code = excluded.code",
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
    conn: Connection,
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


def deliver(
    conn: Connection, peer: str, originals: Iterable[str], detail: str
) -> dict[str, list[str]]:
    """Mark the still ``published`` names of each original ``delivered``, with
    one ``delivered`` event per original that had any; returns those names
    (sorted) by original. Read and written in the caller's transaction, so
    nothing (an expiry, another replica) changes them in between.
    """
    accepted: dict[str, list[str]] = {}
    for original in dict.fromkeys(originals):
        # By ``published_original``; the state is checked here, not in the
        # WHERE, which SQLite would answer from the (peer, state) index:
        # every file published for the peer.
        rows = conn.execute(
            "SELECT name, state FROM published WHERE peer = ? AND original = ?" + for_update(conn),
            (peer, original),
        ).fetchall()
        names = sorted(name for name, state in rows if state == "published")
        if names:
            accepted[original] = names
    updates = [(peer, name) for names in accepted.values() for name in names]
    if updates:
        conn.executemany(
            "UPDATE published SET state = 'delivered' WHERE peer = ? AND name = ?", updates
        )
        kind = EventKind.DELIVERED
        events.insert_events(conn, [(peer, original, kind, detail) for original in accepted])
    return accepted


def reopen(
    conn: Connection, peer: str, original: str, *, at: datetime, actor: str, reason: str
) -> int:
    """Expired → published from ``at`` (a new window, listed anew); rows changed."""
    # Two replicas re-publishing the same file: the second waits on the rows
    # (PostgreSQL; SQLite's write lock already serialises), then finds them
    # published, so the file gets one new window and one event.
    codes.lock_counter(conn)
    names = [
        row[0]
        for row in conn.execute(
            "SELECT name FROM published WHERE peer = ? AND original = ? AND state = 'expired' "
            "ORDER BY name" + for_update(conn),
            (peer, original),
        ).fetchall()
    ]
    # Listed anew, so a new code: a 504 client's cursor is past the old one.
    first_code = codes.allocate(conn, len(names)) if names else 0
    for offset, name in enumerate(names):
        conn.execute(
            "UPDATE published SET state = 'published', published_at = ?, listed_at = NULL, "
            "code = ? WHERE peer = ? AND name = ?",
            (to_text(at), first_code + offset, peer, name),
        )
    if names:
        kind = EventKind.REPUBLISHED
        events.insert_event(conn, peer, original, kind, reason, actor=actor, at=at)
    return len(names)


def select_entries(
    conn: Connection,
    peer: str,
    *,
    state: str | None = None,
    original: str | None = None,
    name: str | None = None,
) -> list[PublishedEntry]:
    """``peer``'s names in ``state`` (ordered by original, name), of ``original``
    (by name), or the one called ``name``."""
    if name is not None:
        sql, params = "name = ?", (peer, name)
    elif original is not None:
        # Sorted here, not by ORDER BY name: SQLite (no ANALYZE) would then walk
        # the (peer, name) key to skip the sort, every row the peer ever had,
        # instead of the few of this original by ``published_original``.
        rows = conn.execute(
            f"SELECT {COLUMNS} FROM published WHERE peer = ? AND original = ?", (peer, original)
        ).fetchall()
        return sorted((entry(r) for r in rows), key=lambda e: e.name)
    else:
        sql, params = "state = ? ORDER BY original, name", (peer, str(state))
    rows = conn.execute(f"SELECT {COLUMNS} FROM published WHERE peer = ? AND {sql}", params)
    return [entry(r) for r in rows.fetchall()]


def select_listing(conn: Connection, peer: str, state: str) -> list[tuple[str, str, int]]:
    """(name, file_type, size) of ``peer``'s names in ``state``, by original then name."""
    return conn.execute(
        "SELECT name, file_type, size FROM published WHERE peer = ? AND state = ? "
        "ORDER BY original, name",
        (peer, str(state)),
    ).fetchall()


def select_originals_before(conn: Connection, peer: str, cutoff: datetime) -> list[str]:
    """Originals still ``published`` whose publication is older than ``cutoff``."""
    rows = conn.execute(
        "SELECT DISTINCT original FROM published "
        "WHERE peer = ? AND state = 'published' AND published_at < ? ORDER BY original",
        (peer, to_text(cutoff)),
    ).fetchall()
    return [r[0] for r in rows]

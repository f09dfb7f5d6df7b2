"""The SQL of the ledger's small per-peer notes: outbox files that could not be
published (the ``unclassified`` table) and status facts (the ``kv`` table).

Plain functions over a ``backend.Connection``, wrapped by
:class:`~concentrador.spool.ledger.ledger.Ledger` in its lock or transaction,
like ``push.py``.
"""

from __future__ import annotations

from datetime import datetime
from typing import NamedTuple

from concentrador.spool.ledger.backend import Connection
from concentrador.spool.ledger.schema import from_text, to_text, utc_now

__all__ = [
    "UnclassifiedEntry",
    "delete_unclassified",
    "select_status",
    "select_unclassified",
    "upsert_status",
    "upsert_unclassified",
]


class UnclassifiedEntry(NamedTuple):
    """An outbox file that could not be published, and why (unpacks as a tuple)."""

    path: str
    reason: str
    since: datetime


def upsert_unclassified(conn: Connection, peer: str, path: str, reason: str) -> None:
    """Remember why an outbox file is not published (keeps the first ``since``)."""
    conn.execute(
        "INSERT INTO unclassified (peer, path, reason, since) VALUES (?, ?, ?, ?) "
        "ON CONFLICT (peer, path) DO UPDATE SET reason = excluded.reason",
        (peer, path, reason, to_text(utc_now())),
    )


def delete_unclassified(conn: Connection, peer: str, path: str) -> None:
    conn.execute("DELETE FROM unclassified WHERE peer = ? AND path = ?", (peer, path))


def select_unclassified(conn: Connection, peer: str) -> list[UnclassifiedEntry]:
    rows = conn.execute(
        "SELECT path, reason, since FROM unclassified WHERE peer = ? ORDER BY path", (peer,)
    ).fetchall()
    return [UnclassifiedEntry(p, r, from_text(s)) for p, r, s in rows]


def upsert_status(conn: Connection, peer: str, key: str, value: str) -> None:
    conn.execute(
        "INSERT INTO kv (peer, key, value, updated_at) VALUES (?, ?, ?, ?) "
        "ON CONFLICT (peer, key) DO UPDATE SET "
        "value = excluded.value, updated_at = excluded.updated_at",
        (peer, key, value, to_text(utc_now())),
    )


def select_status(conn: Connection, peer: str) -> dict[str, str]:
    rows = conn.execute("SELECT key, value FROM kv WHERE peer = ? ORDER BY key", (peer,))
    return dict(rows.fetchall())

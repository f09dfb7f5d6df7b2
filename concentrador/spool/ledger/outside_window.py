"""The SQL of the blocks received outside their peer's load window.

A whole file that arrives outside the window goes straight to ``manual/``; a
block cannot, so the fact ("we answered code 6 for this block") is kept here
until its set is rebuilt (into ``manual/``), fails or expires. It is state,
not a call argument: it must survive a restart between the block and the
rebuild. Plain functions over a ``backend.Connection``, wrapped by
:class:`~concentrador.spool.ledger.ledger.Ledger`.
"""

from __future__ import annotations

from collections.abc import Iterable

from concentrador.spool.ledger.backend import Connection
from concentrador.spool.ledger.schema import to_text, utc_now

__all__ = ["delete_marks", "insert_mark", "select_marked"]

# SQLite's default limit of host parameters is 999 (older builds): a hostile
# NAME.1_99999 set must not turn into one statement with 99999 of them.
_CHUNK = 500


def _chunks(names: Iterable[str]) -> Iterable[list[str]]:
    batch: list[str] = []
    for name in names:
        batch.append(name)
        if len(batch) == _CHUNK:
            yield batch
            batch = []
    if batch:
        yield batch


def insert_mark(conn: Connection, peer: str, name: str) -> None:
    """Mark block ``name`` (keeps the first ``noted_at`` of a re-sent block)."""
    conn.execute(
        "INSERT INTO outside_window (peer, name, noted_at) VALUES (?, ?, ?) "
        "ON CONFLICT (peer, name) DO NOTHING",
        (peer, name, to_text(utc_now())),
    )


def select_marked(conn: Connection, peer: str, names: Iterable[str]) -> list[str]:
    """Those of ``names`` that are marked, sorted."""
    marked: list[str] = []
    for batch in _chunks(names):
        holes = ", ".join("?" * len(batch))
        rows = conn.execute(
            f"SELECT name FROM outside_window WHERE peer = ? AND name IN ({holes})",
            (peer, *batch),
        ).fetchall()
        marked.extend(row[0] for row in rows)
    return sorted(marked)


def delete_marks(conn: Connection, peer: str, names: Iterable[str]) -> None:
    for batch in _chunks(names):
        holes = ", ".join("?" * len(batch))
        conn.execute(
            f"DELETE FROM outside_window WHERE peer = ? AND name IN ({holes})", (peer, *batch)
        )

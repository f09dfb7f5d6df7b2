"""The SQL of the cycle log: one row per claimed job, from claim to release.

Rows are written by :class:`~concentrador.spool.claims.RecordedClaims`
through :meth:`Ledger.cycle_started` / :meth:`Ledger.cycle_ended`; the status
page and the scale-out tests read them (no two rows of one (peer, kind)
overlap; none is left open once every replica stopped cleanly). Plain
functions over a :class:`~concentrador.spool.ledger.backend.Connection`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from concentrador.spool.ledger.backend import Connection, Database
from concentrador.spool.ledger.schema import from_text, to_text, utc_now

__all__ = ["CycleEntry", "CycleLogMethods", "finish", "prune", "select_cycles", "start"]


@dataclass(frozen=True)
class CycleEntry:
    """One claimed job. ``ended_at`` None: still running, or its holder died."""

    id: int
    peer: str
    kind: str
    replica: str
    started_at: datetime
    ended_at: datetime | None
    result: str | None


def start(conn: Connection, peer: str, kind: str, replica: str) -> int:
    row = conn.execute(
        "INSERT INTO cycles (peer, kind, replica, started_at) VALUES (?, ?, ?, ?) RETURNING id",
        (peer, kind, replica, to_text(utc_now())),
    ).fetchone()
    return int(row[0])


def finish(conn: Connection, cycle_id: int, result: str) -> bool:
    """Close row ``cycle_id``; False if there is no open row of that id."""
    cursor = conn.execute(
        "UPDATE cycles SET ended_at = ?, result = ? WHERE id = ? AND ended_at IS NULL",
        (to_text(utc_now()), result, cycle_id),
    )
    return bool(cursor.rowcount)


def select_cycles(
    conn: Connection, peer: str | None = None, kind: str | None = None
) -> list[CycleEntry]:
    """Rows of ``peer`` and ``kind`` (None: any), oldest first."""
    where: list[str] = []
    params: list[str] = []
    if peer is not None:
        where.append("peer = ?")
        params.append(peer)
    if kind is not None:
        where.append("kind = ?")
        params.append(kind)
    clause = f" WHERE {' AND '.join(where)}" if where else ""
    rows = conn.execute(
        "SELECT id, peer, kind, replica, started_at, ended_at, result FROM cycles"
        f"{clause} ORDER BY started_at, id",
        params,
    ).fetchall()
    return [
        CycleEntry(
            int(r[0]), r[1], r[2], r[3], from_text(r[4]), from_text(r[5]) if r[5] else None, r[6]
        )
        for r in rows
    ]


def prune(conn: Connection, before: datetime) -> int:
    """Delete the rows of jobs that ended before ``before``; returns how many."""
    cursor = conn.execute(
        "DELETE FROM cycles WHERE ended_at IS NOT NULL AND ended_at < ?", (to_text(before),)
    )
    return int(cursor.rowcount)


class CycleLogMethods:
    """The :class:`~concentrador.spool.ledger.ledger.Ledger` methods of the cycle log.

    A base class of ``Ledger`` rather than methods in ``ledger.py``, which is
    at its size limit; they use nothing of it but its database.
    """

    _db: Database

    def cycle_started(self, peer: str, kind: str, replica: str) -> int:
        """A claimed job of ``peer`` began on ``replica``: its row's id.

        Not durable (no flush): a power cut may lose the last rows of the log,
        which describes jobs and is never read to decide one.
        """
        with self._db.transaction(durable=False) as conn:
            return start(conn, peer, kind, replica)

    def cycle_ended(self, cycle_id: int, result: str) -> bool:
        """Close row ``cycle_id`` with ``result``; False if it was not open."""
        with self._db.transaction(durable=False) as conn:
            return finish(conn, cycle_id, result)

    def cycles(self, peer: str | None = None, kind: str | None = None) -> list[CycleEntry]:
        """The cycle log of ``peer`` and ``kind`` (None: any), oldest first."""
        with self._db.read() as conn:
            return select_cycles(conn, peer, kind)

    def prune_cycles(self, before: datetime) -> int:
        """Forget the jobs that ended before ``before`` (the expiry pass)."""
        with self._db.transaction(durable=False) as conn:
            return prune(conn, before)

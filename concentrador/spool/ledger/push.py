"""The ledger's push retry bookkeeping (the ``push_state`` table).

A mixin of :class:`~concentrador.spool.ledger.ledger.Ledger`, not a second
interface: callers keep using the one ``Ledger`` object, and a PostgreSQL
port re-implements these four methods with the rest.
"""

from __future__ import annotations

import sqlite3
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from concentrador.spool.ledger.schema import from_text, to_text

__all__ = ["PushState", "PushStateRecords"]

_COLUMNS = "peer, original, attempts, last_error, next_attempt_at"


@dataclass(frozen=True, slots=True)
class PushState:
    """Retry bookkeeping of one file being pushed to a peer."""

    peer: str
    original: str
    attempts: int
    last_error: str | None
    next_attempt_at: datetime | None


def _push(row: tuple) -> PushState:
    peer, original, attempts, last_error, next_at = row
    return PushState(peer, original, attempts, last_error, from_text(next_at) if next_at else None)


class PushStateRecords:
    """``push_state`` accessors; needs the ledger's ``_query`` and ``_transaction``."""

    if TYPE_CHECKING:

        def _query(self, sql: str, params: tuple[object, ...] = ()) -> list[tuple]: ...

        def _transaction(self) -> AbstractContextManager[sqlite3.Connection]: ...

    def push_state(self, peer: str, original: str) -> PushState | None:
        rows = self._query(
            f"SELECT {_COLUMNS} FROM push_state WHERE peer = ? AND original = ?",
            (peer, original),
        )
        return _push(rows[0]) if rows else None

    def record_push_attempt(
        self, peer: str, original: str, *, error: str | None, next_attempt_at: datetime | None
    ) -> PushState:
        """Count one more attempt (failed if ``error``), schedule the next one."""
        next_text = to_text(next_attempt_at) if next_attempt_at else None
        with self._transaction() as conn:
            conn.execute(
                "INSERT INTO push_state (peer, original, attempts, last_error, next_attempt_at) "
                "VALUES (?, ?, 1, ?, ?) ON CONFLICT (peer, original) DO UPDATE SET "
                "attempts = push_state.attempts + 1, last_error = excluded.last_error, "
                "next_attempt_at = excluded.next_attempt_at",
                (peer, original, error, next_text),
            )
            row = conn.execute(
                f"SELECT {_COLUMNS} FROM push_state WHERE peer = ? AND original = ?",
                (peer, original),
            ).fetchone()
        return _push(row)

    def push_states(self, peer: str) -> list[PushState]:
        rows = self._query(
            f"SELECT {_COLUMNS} FROM push_state WHERE peer = ? ORDER BY original", (peer,)
        )
        return [_push(r) for r in rows]

    def clear_push_state(self, peer: str, original: str) -> None:
        with self._transaction() as conn:
            conn.execute("DELETE FROM push_state WHERE peer = ? AND original = ?", (peer, original))

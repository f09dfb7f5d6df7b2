"""The SQL of the ledger's push retry bookkeeping (the ``push_state`` table).

Plain functions over a ``backend.Connection``: the one
:class:`~concentrador.spool.ledger.ledger.Ledger` wraps them in its lock or
transaction, so callers keep using that one object, and a PostgreSQL port
re-implements these statements with the rest.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from concentrador.spool.ledger.backend import Connection
from concentrador.spool.ledger.schema import from_text, to_text

__all__ = ["PushState", "clear_state", "record_attempt", "select_state", "select_states"]

_COLUMNS = "peer, original, attempts, last_error, next_attempt_at"


@dataclass(frozen=True, slots=True)
class PushState:
    """Retry bookkeeping of one file being pushed to a peer."""

    peer: str
    original: str
    attempts: int
    last_error: str | None
    next_attempt_at: datetime | None

    def describe(self) -> str:
        """One line for the audit trail: this attempt's outcome and what comes next."""
        outcome = self.last_error or "accepted"
        after = f"; next at {to_text(self.next_attempt_at)}" if self.next_attempt_at else ""
        return f"attempt {self.attempts}: {outcome}{after}"


def _push(row: tuple) -> PushState:
    peer, original, attempts, last_error, next_at = row
    return PushState(peer, original, attempts, last_error, from_text(next_at) if next_at else None)


def select_state(conn: Connection, peer: str, original: str) -> PushState | None:
    row = conn.execute(
        f"SELECT {_COLUMNS} FROM push_state WHERE peer = ? AND original = ?", (peer, original)
    ).fetchone()
    return _push(row) if row is not None else None


def select_states(conn: Connection, peer: str) -> list[PushState]:
    rows = conn.execute(
        f"SELECT {_COLUMNS} FROM push_state WHERE peer = ? ORDER BY original", (peer,)
    ).fetchall()
    return [_push(r) for r in rows]


def record_attempt(
    conn: Connection,
    peer: str,
    original: str,
    *,
    error: str | None,
    next_attempt_at: datetime | None,
) -> PushState:
    """Count one more attempt and return the new state (inside the caller's transaction)."""
    next_text = to_text(next_attempt_at) if next_attempt_at else None
    conn.execute(
        "INSERT INTO push_state (peer, original, attempts, last_error, next_attempt_at) "
        "VALUES (?, ?, 1, ?, ?) ON CONFLICT (peer, original) DO UPDATE SET "
        "attempts = push_state.attempts + 1, last_error = excluded.last_error, "
        "next_attempt_at = excluded.next_attempt_at",
        (peer, original, error, next_text),
    )
    state = select_state(conn, peer, original)
    assert state is not None  # just written, in this transaction
    return state


def clear_state(conn: Connection, peer: str, original: str) -> None:
    conn.execute("DELETE FROM push_state WHERE peer = ? AND original = ?", (peer, original))

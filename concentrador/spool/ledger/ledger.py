"""The ledger: the little state that lives beside the spool folders.

The folders say *where* a file is; the ledger remembers what the folders
cannot: what was published to whom and when (for listing and expiry), which
received files still await confirmation, push retry state, which received
blocks arrived outside their peer's load window, and small status facts. It
is one SQLite file (WAL, ``synchronous=FULL``) behind this narrow interface,
which is meant to be re-implemented on PostgreSQL for operators
that run several replicas: the SQL is plain (``INSERT ... ON CONFLICT``,
no SQLite-only functions), timestamps are stored as fixed-width UTC ISO-8601
text so that string order is time order, and callers only see dataclasses.

Thread safety: one connection shared by all threads, serialised by a lock.
Several processes (daemon + CLI) may open the same file; SQLite's own
locking plus a busy timeout handles that.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import NamedTuple

from concentrador.spool.ledger import outside_window, push
from concentrador.spool.ledger.push import PushState
from concentrador.spool.ledger.schema import (
    SCHEMA_VERSION,
    LedgerError,
    apply_migrations,
    from_text,
    to_text,
    utc_now,
)

__all__ = [
    "SCHEMA_VERSION",
    "Ledger",
    "LedgerError",
    "ListedName",
    "PublishedEntry",
    "PushState",
    "ReceivedEntry",
    "UnclassifiedEntry",
]


def _published_row(e: PublishedEntry) -> tuple[object, ...]:
    when = to_text(e.published_at)
    return (e.peer, e.name, e.original, e.file_type, e.size, e.md5, when, str(e.state))


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


class UnclassifiedEntry(NamedTuple):
    """An outbox file that could not be published, and why (unpacks as a tuple)."""

    path: str
    reason: str
    since: datetime


class ListedName(NamedTuple):
    """The three columns a listing needs, without building full entries."""

    name: str
    file_type: str
    size: int


class Ledger:
    """The spool's SQLite ledger. Open once per process; :meth:`close` at exit.

    The tables and migrations are in ``schema.py``; the SQL of the push retry
    state and of the outside-window marks in ``push.py`` and
    ``outside_window.py`` (functions over a connection, called from here).
    """

    def __init__(self, path: Path, *, timeout: float = 30.0) -> None:
        self.path = Path(path)
        self._lock = threading.RLock()
        try:
            self._conn = sqlite3.connect(
                self.path, timeout=timeout, isolation_level=None, check_same_thread=False
            )
            self._conn.execute("PRAGMA journal_mode=WAL")
            # FULL: a commit is on disk before we tell a peer "stored".
            self._conn.execute("PRAGMA synchronous=FULL")
            self._conn.execute("PRAGMA foreign_keys=ON")
            self._migrate()
        except sqlite3.DatabaseError as exc:
            raise LedgerError(f"cannot open ledger {self.path}: {exc}") from exc

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- plumbing ------------------------------------------------------------
    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        # IMMEDIATE takes the write lock up front, so two processes never both
        # read-then-write and deadlock on the upgrade.
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            else:
                self._conn.execute("COMMIT")

    def _query(self, sql: str, params: tuple[object, ...] = ()) -> list[tuple]:
        with self._lock:
            return self._conn.execute(sql, params).fetchall()

    def _migrate(self) -> None:
        with self._transaction() as conn:
            apply_migrations(conn, self.path)

    def schema_version(self) -> int:
        return self._query("SELECT MAX(version) FROM schema_migrations")[0][0] or 0

    # -- publication ---------------------------------------------------------
    def record_published(self, entries: Iterable[PublishedEntry]) -> None:
        """Record (or refresh) listed names, all in one transaction."""
        rows = [_published_row(e) for e in entries]
        with self._transaction() as conn:
            conn.executemany(
                "INSERT INTO published "
                "(peer, name, original, file_type, size, md5, published_at, state) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (peer, name) DO UPDATE SET "
                "original = excluded.original, file_type = excluded.file_type, "
                "size = excluded.size, md5 = excluded.md5, "
                "published_at = excluded.published_at, state = excluded.state",
                rows,
            )

    _PUBLISHED_COLS = "peer, name, original, file_type, size, md5, published_at, state"

    @staticmethod
    def _published(row: tuple) -> PublishedEntry:
        peer, name, original, file_type, size, md5, published_at, state = row
        return PublishedEntry(
            peer, name, original, file_type, size, md5, from_text(published_at), state
        )

    def entries_for(self, peer: str, state: str = "published") -> list[PublishedEntry]:
        """Names of ``peer`` in ``state``, ordered by original then name."""
        rows = self._query(
            f"SELECT {self._PUBLISHED_COLS} FROM published WHERE peer = ? AND state = ? "
            "ORDER BY original, name",
            (peer, str(state)),
        )
        return [self._published(r) for r in rows]

    def listing(self, peer: str, state: str = "published") -> list[ListedName]:
        """(name, file_type, size) of ``peer``'s names in ``state``: the fast path
        for informacionDisponible (no timestamp parsing per row)."""
        rows = self._query(
            "SELECT name, file_type, size FROM published WHERE peer = ? AND state = ? "
            "ORDER BY original, name",
            (peer, str(state)),
        )
        return [ListedName(*row) for row in rows]

    def lookup(self, peer: str, name: str) -> PublishedEntry | None:
        rows = self._query(
            f"SELECT {self._PUBLISHED_COLS} FROM published WHERE peer = ? AND name = ?",
            (peer, name),
        )
        return self._published(rows[0]) if rows else None

    def entries_of(self, peer: str, original: str) -> list[PublishedEntry]:
        """Every listed name (the blocks, or the whole file) of one original."""
        rows = self._query(
            f"SELECT {self._PUBLISHED_COLS} FROM published WHERE peer = ? AND original = ? "
            "ORDER BY name",
            (peer, original),
        )
        return [self._published(r) for r in rows]

    def set_state(self, peer: str, original: str, state: str) -> int:
        """Move every name of ``original`` to ``state``; returns rows changed."""
        with self._transaction() as conn:
            cur = conn.execute(
                "UPDATE published SET state = ? WHERE peer = ? AND original = ?",
                (str(state), peer, original),
            )
            return cur.rowcount

    def published_before(self, peer: str, cutoff: datetime) -> list[str]:
        """Originals still ``published`` whose publication is older than ``cutoff``."""
        rows = self._query(
            "SELECT DISTINCT original FROM published "
            "WHERE peer = ? AND state = 'published' AND published_at < ? ORDER BY original",
            (peer, to_text(cutoff)),
        )
        return [r[0] for r in rows]

    # -- outbox problems -----------------------------------------------------
    def note_unclassified(self, peer: str, path: str, reason: str) -> None:
        """Remember why an outbox file is not published (keeps the first ``since``)."""
        with self._transaction() as conn:
            conn.execute(
                "INSERT INTO unclassified (peer, path, reason, since) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (peer, path) DO UPDATE SET reason = excluded.reason",
                (peer, str(path), reason, to_text(utc_now())),
            )

    def clear_unclassified(self, peer: str, path: str) -> None:
        with self._transaction() as conn:
            conn.execute("DELETE FROM unclassified WHERE peer = ? AND path = ?", (peer, str(path)))

    def unclassified(self, peer: str) -> list[UnclassifiedEntry]:
        rows = self._query(
            "SELECT path, reason, since FROM unclassified WHERE peer = ? ORDER BY path", (peer,)
        )
        return [UnclassifiedEntry(p, r, from_text(s)) for p, r, s in rows]

    # -- received files ------------------------------------------------------
    _RECEIVED_COLS = "peer, name, md5, size, stored_path, received_at, confirmed_at"

    @staticmethod
    def _received(row: tuple) -> ReceivedEntry:
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

    def record_received(
        self,
        peer: str,
        name: str,
        md5: str,
        size: int,
        stored_path: str | Path,
        *,
        received_at: datetime | None = None,
    ) -> None:
        """Record a stored file. A *different* file under the same name resets
        the confirmation (it is a new file); the same MD5 keeps it."""
        with self._transaction() as conn:
            conn.execute(
                f"INSERT INTO received ({self._RECEIVED_COLS}) VALUES (?, ?, ?, ?, ?, ?, NULL) "
                "ON CONFLICT (peer, name) DO UPDATE SET "
                "confirmed_at = CASE WHEN received.md5 = excluded.md5 "
                "THEN received.confirmed_at ELSE NULL END, "
                "md5 = excluded.md5, size = excluded.size, "
                "stored_path = excluded.stored_path, received_at = excluded.received_at",
                (peer, name, md5, size, str(stored_path), to_text(received_at or utc_now())),
            )

    def received(self, peer: str, name: str) -> ReceivedEntry | None:
        rows = self._query(
            f"SELECT {self._RECEIVED_COLS} FROM received WHERE peer = ? AND name = ?",
            (peer, name),
        )
        return self._received(rows[0]) if rows else None

    def mark_confirmed(self, peer: str, name: str, *, at: datetime | None = None) -> bool:
        """Note that we confirmed ``name`` to ``peer``; False if it is unknown."""
        with self._transaction() as conn:
            cur = conn.execute(
                "UPDATE received SET confirmed_at = ? WHERE peer = ? AND name = ?",
                (to_text(at or utc_now()), peer, name),
            )
            return cur.rowcount > 0

    def unconfirmed(self, peer: str) -> list[ReceivedEntry]:
        """Stored files whose confirmation has not (yet) reached the peer."""
        rows = self._query(
            f"SELECT {self._RECEIVED_COLS} FROM received "
            "WHERE peer = ? AND confirmed_at IS NULL ORDER BY received_at, name",
            (peer,),
        )
        return [self._received(r) for r in rows]

    # -- small status facts ----------------------------------------------------
    def set_status(self, peer: str, key: str, value: str) -> None:
        with self._transaction() as conn:
            conn.execute(
                "INSERT INTO kv (peer, key, value, updated_at) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (peer, key) DO UPDATE SET "
                "value = excluded.value, updated_at = excluded.updated_at",
                (peer, key, str(value), to_text(utc_now())),
            )

    def status(self, peer: str) -> dict[str, str]:
        rows = self._query("SELECT key, value FROM kv WHERE peer = ? ORDER BY key", (peer,))
        return dict(rows)

    # -- push retry state (SQL in push.py) ---------------------------------------
    def push_state(self, peer: str, original: str) -> PushState | None:
        with self._lock:
            return push.select_state(self._conn, peer, original)

    def record_push_attempt(
        self, peer: str, original: str, *, error: str | None, next_attempt_at: datetime | None
    ) -> PushState:
        """Count one more attempt (failed if ``error``), schedule the next one."""
        with self._transaction() as conn:
            return push.record_attempt(
                conn, peer, original, error=error, next_attempt_at=next_attempt_at
            )

    def push_states(self, peer: str) -> list[PushState]:
        with self._lock:
            return push.select_states(self._conn, peer)

    def clear_push_state(self, peer: str, original: str) -> None:
        with self._transaction() as conn:
            push.clear_state(conn, peer, original)

    # -- blocks received outside the load window (SQL in outside_window.py) ------
    def note_outside_window(self, peer: str, name: str) -> None:
        """Remember that block ``name`` was answered code 6: its set rebuilds into manual/.

        Written *before* the block is committed to ``partial/``, so no crash
        can leave the block there without its mark.
        """
        with self._transaction() as conn:
            outside_window.insert_mark(conn, peer, name)

    def marked_outside_window(self, peer: str, names: Iterable[str]) -> list[str]:
        """Those of the block ``names`` that arrived outside the load window (sorted)."""
        with self._lock:
            return outside_window.select_marked(self._conn, peer, names)

    def clear_outside_window(self, peer: str, names: Iterable[str]) -> None:
        """Forget the marks of ``names`` (their set was rebuilt, failed or expired)."""
        with self._transaction() as conn:
            outside_window.delete_marks(conn, peer, names)

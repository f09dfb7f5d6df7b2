"""The ledger: the little state that lives beside the spool folders.

The folders say *where* a file is; the ledger remembers what the folders
cannot: what was published to whom and when (for listing and expiry), which
received files still await confirmation, push retry state, and small status
facts. It is one SQLite file (WAL, ``synchronous=FULL``) behind this narrow
interface, which is meant to be re-implemented on PostgreSQL for operators
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
from datetime import UTC, datetime
from pathlib import Path
from typing import NamedTuple

__all__ = [
    "Ledger",
    "LedgerError",
    "ListedName",
    "PublishedEntry",
    "PushState",
    "ReceivedEntry",
    "UnclassifiedEntry",
]

_TS_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"

# Each migration is a list of statements applied in one transaction. Append
# new versions; never edit an applied one.
_MIGRATIONS: list[tuple[int, list[str]]] = [
    (
        1,
        [
            "CREATE TABLE published (peer TEXT NOT NULL, name TEXT NOT NULL,"
            " original TEXT NOT NULL, file_type TEXT NOT NULL, size INTEGER NOT NULL,"
            " md5 TEXT NOT NULL, published_at TEXT NOT NULL, state TEXT NOT NULL,"
            " PRIMARY KEY (peer, name))",
            "CREATE INDEX published_original ON published (peer, original)",
            "CREATE INDEX published_state ON published (peer, state, published_at)",
            "CREATE TABLE unclassified (peer TEXT NOT NULL, path TEXT NOT NULL,"
            " reason TEXT NOT NULL, since TEXT NOT NULL, PRIMARY KEY (peer, path))",
            "CREATE TABLE received (peer TEXT NOT NULL, name TEXT NOT NULL,"
            " md5 TEXT NOT NULL, size INTEGER NOT NULL, stored_path TEXT NOT NULL,"
            " received_at TEXT NOT NULL, confirmed_at TEXT, PRIMARY KEY (peer, name))",
            "CREATE TABLE push_state (peer TEXT NOT NULL, original TEXT NOT NULL,"
            " attempts INTEGER NOT NULL, last_error TEXT, next_attempt_at TEXT,"
            " PRIMARY KEY (peer, original))",
            "CREATE TABLE kv (peer TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL,"
            " updated_at TEXT NOT NULL, PRIMARY KEY (peer, key))",
        ],
    ),
]

SCHEMA_VERSION = _MIGRATIONS[-1][0]


class LedgerError(Exception):
    """The ledger file is unusable (corrupt, from a newer version, ...)."""


def _to_text(moment: datetime) -> str:
    if moment.tzinfo is None or moment.utcoffset() is None:
        # A naive datetime is a bug waiting for a DST change: refuse it.
        raise ValueError(f"ledger timestamps must be timezone-aware, got {moment!r}")
    return moment.astimezone(UTC).strftime(_TS_FORMAT)


def _from_text(text: str) -> datetime:
    return datetime.strptime(text, _TS_FORMAT).replace(tzinfo=UTC)


def _published_row(e: PublishedEntry) -> tuple[object, ...]:
    when = _to_text(e.published_at)
    return (e.peer, e.name, e.original, e.file_type, e.size, e.md5, when, str(e.state))


def _now() -> datetime:
    return datetime.now(UTC)


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


@dataclass(frozen=True, slots=True)
class PushState:
    """Retry bookkeeping of one file being pushed to a peer."""

    peer: str
    original: str
    attempts: int
    last_error: str | None
    next_attempt_at: datetime | None


class Ledger:
    """The spool's SQLite ledger. Open once per process; :meth:`close` at exit."""

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
            conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations ("
                "version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)"
            )
            row = conn.execute("SELECT MAX(version) FROM schema_migrations").fetchone()
            current = row[0] or 0
            if current > SCHEMA_VERSION:
                raise LedgerError(
                    f"ledger {self.path} has schema version {current}, newer than this "
                    f"program ({SCHEMA_VERSION}); upgrade concentrador"
                )
            for version, statements in _MIGRATIONS:
                if version <= current:
                    continue
                for statement in statements:
                    conn.execute(statement)
                conn.execute(
                    "INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)",
                    (version, _to_text(_now())),
                )

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
            peer, name, original, file_type, size, md5, _from_text(published_at), state
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
            (peer, _to_text(cutoff)),
        )
        return [r[0] for r in rows]

    # -- outbox problems -----------------------------------------------------
    def note_unclassified(self, peer: str, path: str, reason: str) -> None:
        """Remember why an outbox file is not published (keeps the first ``since``)."""
        with self._transaction() as conn:
            conn.execute(
                "INSERT INTO unclassified (peer, path, reason, since) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (peer, path) DO UPDATE SET reason = excluded.reason",
                (peer, str(path), reason, _to_text(_now())),
            )

    def clear_unclassified(self, peer: str, path: str) -> None:
        with self._transaction() as conn:
            conn.execute("DELETE FROM unclassified WHERE peer = ? AND path = ?", (peer, str(path)))

    def unclassified(self, peer: str) -> list[UnclassifiedEntry]:
        rows = self._query(
            "SELECT path, reason, since FROM unclassified WHERE peer = ? ORDER BY path", (peer,)
        )
        return [UnclassifiedEntry(p, r, _from_text(s)) for p, r, s in rows]

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
            _from_text(received_at),
            _from_text(confirmed_at) if confirmed_at else None,
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
                (peer, name, md5, size, str(stored_path), _to_text(received_at or _now())),
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
                (_to_text(at or _now()), peer, name),
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

    # -- push state ----------------------------------------------------------
    @staticmethod
    def _push(row: tuple) -> PushState:
        peer, original, attempts, last_error, next_at = row
        return PushState(
            peer, original, attempts, last_error, _from_text(next_at) if next_at else None
        )

    def push_state(self, peer: str, original: str) -> PushState | None:
        rows = self._query(
            "SELECT peer, original, attempts, last_error, next_attempt_at FROM push_state "
            "WHERE peer = ? AND original = ?",
            (peer, original),
        )
        return self._push(rows[0]) if rows else None

    def record_push_attempt(
        self, peer: str, original: str, *, error: str | None, next_attempt_at: datetime | None
    ) -> PushState:
        """Count one more attempt (failed if ``error``), schedule the next one."""
        next_text = _to_text(next_attempt_at) if next_attempt_at else None
        with self._transaction() as conn:
            conn.execute(
                "INSERT INTO push_state (peer, original, attempts, last_error, next_attempt_at) "
                "VALUES (?, ?, 1, ?, ?) ON CONFLICT (peer, original) DO UPDATE SET "
                "attempts = push_state.attempts + 1, last_error = excluded.last_error, "
                "next_attempt_at = excluded.next_attempt_at",
                (peer, original, error, next_text),
            )
            row = conn.execute(
                "SELECT peer, original, attempts, last_error, next_attempt_at FROM push_state "
                "WHERE peer = ? AND original = ?",
                (peer, original),
            ).fetchone()
        return self._push(row)

    def push_states(self, peer: str) -> list[PushState]:
        rows = self._query(
            "SELECT peer, original, attempts, last_error, next_attempt_at FROM push_state "
            "WHERE peer = ? ORDER BY original",
            (peer,),
        )
        return [self._push(r) for r in rows]

    def clear_push_state(self, peer: str, original: str) -> None:
        with self._transaction() as conn:
            conn.execute("DELETE FROM push_state WHERE peer = ? AND original = ?", (peer, original))

    # -- small status facts ----------------------------------------------------
    def set_status(self, peer: str, key: str, value: str) -> None:
        with self._transaction() as conn:
            conn.execute(
                "INSERT INTO kv (peer, key, value, updated_at) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (peer, key) DO UPDATE SET "
                "value = excluded.value, updated_at = excluded.updated_at",
                (peer, key, str(value), _to_text(_now())),
            )

    def status(self, peer: str) -> dict[str, str]:
        rows = self._query("SELECT key, value FROM kv WHERE peer = ? ORDER BY key", (peer,))
        return dict(rows)

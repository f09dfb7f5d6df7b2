"""The SQLite ledger database: one file (WAL, ``synchronous=FULL``), the default.

One connection shared by all threads, serialised by a lock. Several
processes (daemon + CLI) may open the same file; SQLite's own locking plus a
busy timeout handles that. Write transactions are ``BEGIN IMMEDIATE``: they
take the file's write lock up front, so two processes never both
read-then-write and deadlock on the upgrade (and the SQL modules may read
then write without row locks: see ``backend.lock``).
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from concentrador.spool.ledger.backend import SQLITE, Connection, Dialect

__all__ = ["SqliteConnection", "SqliteDatabase"]


class SqliteConnection(sqlite3.Connection):
    """A ``sqlite3.Connection`` that is a :class:`~.backend.Connection`: the SQL
    modules call its C methods directly, no wrapper per statement."""

    dialect: Dialect = SQLITE
    trail: bool = True


class SqliteDatabase:
    """The ledger in one SQLite file."""

    dialect: Dialect = SQLITE

    def __init__(self, path: Path, *, timeout: float = 30.0, trail: bool = True) -> None:
        self.path = Path(path)
        self.location = str(self.path)
        self._lock = threading.RLock()
        conn = sqlite3.connect(
            self.path,
            timeout=timeout,
            isolation_level=None,
            check_same_thread=False,
            factory=SqliteConnection,
        )
        assert isinstance(conn, SqliteConnection)
        self._conn = conn
        try:
            conn.trail = trail
            _set_wal(conn, timeout)
            # FULL: a commit is on disk before we tell a peer "stored".
            conn.execute("PRAGMA synchronous=FULL")
            conn.execute("PRAGMA foreign_keys=ON")
        except BaseException:
            conn.close()
            raise

    @property
    def connection(self) -> SqliteConnection:
        """The one connection (tests reach for it to ``EXPLAIN QUERY PLAN``)."""
        return self._conn

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    @contextmanager
    def transaction(self, *, durable: bool = True) -> Iterator[Connection]:
        # durable=False is for events that only observe (listed, fetched, a
        # block arrived): their commit skips the fsync (WAL, synchronous=NORMAL:
        # a power cut may lose the last ones, never corrupt), so a fetch costs
        # no extra disk flush.
        with self._lock:
            if not durable:
                self._conn.execute("PRAGMA synchronous=NORMAL")
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            else:
                self._conn.execute("COMMIT")
            finally:
                if not durable:
                    self._conn.execute("PRAGMA synchronous=FULL")

    @contextmanager
    def read(self) -> Iterator[Connection]:
        with self._lock:
            yield self._conn


def _set_wal(conn: sqlite3.Connection, timeout: float) -> None:
    """``PRAGMA journal_mode=WAL``, retried while another process holds the file.

    Switching a new database to WAL takes an exclusive lock, and SQLite answers
    "database is locked" at once instead of calling the busy handler when
    another connection is creating or switching the same file (the daemon and
    a CLI command starting together): wait for it, within ``timeout``.
    """
    deadline = time.monotonic() + timeout
    pause = 0.005
    while True:
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() + pause > deadline:
                raise
        time.sleep(pause)
        pause = min(pause * 2, 0.2)

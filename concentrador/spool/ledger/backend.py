"""The ledger's database seam: what the SQL modules need from SQLite or PostgreSQL.

The SQL modules (``published.py``, ``codes.py``, ...) are plain functions over a
:class:`Connection`: ``execute(sql, params)`` with ``?`` placeholders, a cursor
with ``fetchone``/``fetchall``/``rowcount``, ``executemany``, and two
attributes, ``dialect`` and ``trail``. A ``sqlite3.Connection`` subclass is one
(``sqlite_db.py``, at no cost per statement); a thin wrapper over a psycopg
connection is the other (``postgres_db.py``, which rewrites ``?`` to ``%s``).

The SQL is written once, in the common subset (``INSERT ... ON CONFLICT``,
``UPDATE ... RETURNING``, ``LIKE ... ESCAPE``). What differs by dialect is
here, and small:

* :func:`lock`: SQLite's ``BEGIN IMMEDIATE`` takes the one write lock of the
  file, so a read-then-write in a transaction is never interleaved with
  another writer. PostgreSQL runs READ COMMITTED, where two transactions can
  both read "absent" and then both write: those few places take a
  transaction-scoped advisory lock on what they are about to read.
* :func:`for_update`: ``SELECT ... FOR UPDATE`` on PostgreSQL (SQLite has no
  row locks, and needs none under its write lock).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from typing import Any, Literal, Protocol

__all__ = [
    "POSTGRESQL",
    "SQLITE",
    "Connection",
    "Cursor",
    "Database",
    "Dialect",
    "for_update",
    "lock",
    "lock_key",
]

Dialect = Literal["sqlite", "postgresql"]
SQLITE: Dialect = "sqlite"
POSTGRESQL: Dialect = "postgresql"


class Cursor(Protocol):
    """The part of a DB-API cursor the SQL modules use (rows are tuples)."""

    @property
    def rowcount(self) -> int: ...

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...

    def __iter__(self) -> Iterator[Any]: ...


class Connection(Protocol):
    """What a SQL module function receives: one connection, inside a transaction
    (writes) or not (reads)."""

    dialect: Dialect
    trail: bool
    """False: audit-trail inserts write nothing (``Ledger(trail=False)``, benchmarks only)."""

    def execute(self, sql: str, parameters: Sequence[Any] = (), /) -> Any: ...

    def executemany(self, sql: str, parameters: Iterable[Sequence[Any]], /) -> Any: ...


class Database(Protocol):
    """One ledger database: SQLite (``sqlite_db.py``) or PostgreSQL (``postgres_db.py``)."""

    dialect: Dialect
    location: str
    """For messages: the file, or the URL without its password."""

    def transaction(self, *, durable: bool = True) -> AbstractContextManager[Connection]:
        """A write transaction, committed when the block ends without an exception.

        ``durable=False``: the commit may skip the flush to disk (events that
        only observe); a crash may lose it, never corrupt anything.
        """
        ...

    def read(self) -> AbstractContextManager[Connection]:
        """A connection for reads (each statement sees the latest commits)."""
        ...

    def close(self) -> None: ...


def lock_key(*parts: str) -> int:
    """A stable signed 64-bit key for ``pg_advisory_xact_lock`` (any process, any host)."""
    digest = hashlib.blake2b("\x1f".join(parts).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def lock(conn: Connection, *parts: str) -> None:
    """Serialise read-then-write on ``parts`` until the transaction ends.

    A no-op on SQLite, whose transactions already hold the file's write lock.
    """
    if conn.dialect == POSTGRESQL:
        conn.execute("SELECT pg_advisory_xact_lock(?)", (lock_key(*parts),))


def for_update(conn: Connection) -> str:
    """`` FOR UPDATE`` to append to a SELECT whose rows the transaction then changes."""
    return " FOR UPDATE" if conn.dialect == POSTGRESQL else ""

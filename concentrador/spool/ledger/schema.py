"""The ledger's storage format: its tables, their migrations, its timestamps.

Kept apart from :class:`~concentrador.spool.ledger.ledger.Ledger` so that the one
place to read (and to port to PostgreSQL) is this list of plain SQL
statements. Timestamps are stored as fixed-width UTC ISO-8601 text, so that
string order is time order in any database.
"""

from __future__ import annotations

import contextlib
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

__all__ = [
    "MIGRATIONS",
    "SCHEMA_VERSION",
    "LedgerError",
    "apply_migrations",
    "from_text",
    "to_text",
    "utc_now",
]

_TS_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"

# Each migration is a list of statements applied in one transaction. Append
# new versions; never edit an applied one.
MIGRATIONS: list[tuple[int, list[str]]] = [
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
    (
        2,
        [
            # Blocks answered code 6 (outside the load window): their set is
            # rebuilt into manual/ (see outside_window.py).
            "CREATE TABLE outside_window (peer TEXT NOT NULL, name TEXT NOT NULL,"
            " noted_at TEXT NOT NULL, PRIMARY KEY (peer, name))",
        ],
    ),
    (
        3,
        [
            # The audit trail (see events.py): append-only, one row per thing
            # that happened to a file, written in the transaction of the change.
            "CREATE TABLE events (id INTEGER PRIMARY KEY, at TEXT NOT NULL,"
            " peer TEXT NOT NULL, name TEXT NOT NULL, kind TEXT NOT NULL,"
            " detail TEXT NOT NULL, actor TEXT)",
            "CREATE INDEX events_file ON events (peer, name, id)",
            # When a published file was first listed to its peer (NULL: not yet).
            "ALTER TABLE published ADD COLUMN listed_at TEXT",
            # inbox or manual: the folder a received file was stored in.
            "ALTER TABLE received ADD COLUMN state TEXT NOT NULL DEFAULT 'inbox'",
            "UPDATE received SET state = 'manual' WHERE stored_path LIKE '%/manual/%'",
            # The console's file search (search.py) orders and filters by time.
            "CREATE INDEX published_time ON published (published_at)",
            "CREATE INDEX received_time ON received (received_at)",
            "CREATE INDEX received_peer_time ON received (peer, received_at)",
        ],
    ),
    (
        4,
        [
            # A received file's type, from its name by the configured prefix
            # table when it is recorded (NULL: no prefix matched, or recorded
            # before v4), so the file search can filter received files by type.
            "ALTER TABLE received ADD COLUMN file_type TEXT",
            "CREATE INDEX received_type_time ON received (file_type, received_at)",
        ],
    ),
    (
        5,
        [
            # IEC 62325-504 message codes (codes.py): every published row gets
            # the next number of one global sequence when it is recorded. The
            # sequence is a counter row, not MAX(code) + 1 nor a rowid, so a
            # code is never given twice even after its row is deleted, and it
            # survives restarts (SQLite AUTOINCREMENT semantics in plain SQL;
            # a PostgreSQL port may use a SEQUENCE instead).
            "ALTER TABLE published ADD COLUMN code INTEGER",
            # Backfill in publication order (ties by peer, name). UPDATE ... FROM
            # and ROW_NUMBER() are plain SQL (SQLite >= 3.33, PostgreSQL).
            "UPDATE published SET code = numbered.code FROM (SELECT peer, name,"
            " ROW_NUMBER() OVER (ORDER BY published_at, peer, name) AS code"
            " FROM published) AS numbered"
            " WHERE numbered.peer = published.peer AND numbered.name = published.name",
            "CREATE TABLE sequences (name TEXT NOT NULL PRIMARY KEY, value INTEGER NOT NULL)",
            "INSERT INTO sequences (name, value)"
            " SELECT 'message_code', COALESCE(MAX(code), 0) FROM published",
            "CREATE UNIQUE INDEX published_code ON published (code)",
            # list "after code N" of one peer's published files: an index range scan.
            "CREATE INDEX published_peer_code ON published (peer, state, code)",
            # A 504 client's cursor: the last code of a peer stored durably here.
            "CREATE TABLE iec_cursor (peer TEXT NOT NULL PRIMARY KEY, code INTEGER NOT NULL,"
            " updated_at TEXT NOT NULL)",
        ],
    ),
]

SCHEMA_VERSION = MIGRATIONS[-1][0]


class LedgerError(Exception):
    """The ledger file is unusable (corrupt, from a newer version, ...)."""


def to_text(moment: datetime) -> str:
    """A timezone-aware datetime as the ledger stores it (UTC, fixed width)."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        # A naive datetime is a bug waiting for a DST change: refuse it.
        raise ValueError(f"ledger timestamps must be timezone-aware, got {moment!r}")
    return moment.astimezone(UTC).strftime(_TS_FORMAT)


def from_text(text: str) -> datetime:
    # fromisoformat reads the fixed-width form to_text writes ~20x faster than
    # strptime (read on every ledger lookup); anything else still goes through strptime.
    if len(text) == 27 and text[-1] == "Z":
        with contextlib.suppress(ValueError):
            return datetime.fromisoformat(text[:-1]).replace(tzinfo=UTC)
    return datetime.strptime(text, _TS_FORMAT).replace(tzinfo=UTC)


def utc_now() -> datetime:
    return datetime.now(UTC)


def apply_migrations(conn: sqlite3.Connection, path: Path) -> None:
    """Bring the schema up to :data:`SCHEMA_VERSION` (inside the caller's transaction).

    Raises :class:`LedgerError` for a ledger written by a newer program:
    guessing at a schema we do not know could corrupt it.
    """
    conn.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations ("
        "version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)"
    )
    row = conn.execute("SELECT MAX(version) FROM schema_migrations").fetchone()
    current = row[0] or 0
    if current > SCHEMA_VERSION:
        raise LedgerError(
            f"ledger {path} has schema version {current}, newer than this "
            f"program ({SCHEMA_VERSION}); upgrade concentrador"
        )
    for version, statements in MIGRATIONS:
        if version <= current:
            continue
        for statement in statements:
            conn.execute(statement)
        conn.execute(
            "INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)",
            (version, to_text(utc_now())),
        )

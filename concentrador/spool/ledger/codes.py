"""The SQL of IEC 62325-504 message codes and of a 504 client's code cursor.

**Codes** (server side). A 504 ``list`` names each message by a code, a
positive integer that grows as messages are added, so that a client asks for
"everything after code N". Every ``published`` row gets the next code of one
global sequence (the ``sequences`` row ``message_code``, schema version 5)
each time it is recorded, and again when an expired file is re-published (so
a client whose cursor is past its old code sees it again). The counter only
ever grows: a code is never given twice, even after its row is deleted, and
it survives restarts.

**Cursor** (client side). "Confirmation" in 504 is the client's own cursor:
the highest code of a peer whose message is stored durably. It advances in
the transaction that records the received file, and never backwards unless
an operator rewinds it.

Plain functions over a ``backend.Connection`` (SQLite or PostgreSQL), wrapped by
:class:`~concentrador.spool.ledger.ledger.Ledger`, like ``push.py``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from concentrador.spool.ledger.backend import POSTGRESQL, Connection
from concentrador.spool.ledger.schema import from_text, to_text, utc_now

__all__ = [
    "CodedEntry",
    "advance_cursor",
    "allocate",
    "lock_counter",
    "select_by_code",
    "select_by_name",
    "select_cursor",
    "select_entries",
]

_COLUMNS = "code, name, original, file_type, size, md5, published_at, state"
_SEQUENCE = "message_code"


@dataclass(frozen=True, slots=True)
class CodedEntry:
    """One published name with its 504 message code."""

    code: int
    name: str
    original: str
    file_type: str
    size: int
    md5: str
    published_at: datetime
    state: str


def _entry(row: tuple, times: dict[str, datetime] | None = None) -> CodedEntry:
    """``times``: the datetimes already read in this call, by their text.

    Many rows of one list share a ``published_at`` (a publish pass stamps its
    whole batch), and reading the text is most of the cost of a row.
    """
    code, name, original, file_type, size, md5, published_at, state = row
    if times is None:
        when = from_text(published_at)
    elif (known := times.get(published_at)) is not None:
        when = known
    else:
        when = times[published_at] = from_text(published_at)
    return CodedEntry(code, name, original, file_type, size, md5, when, state)


def allocate(conn: Connection, count: int) -> int:
    """Take ``count`` codes (inside the caller's write transaction); the first one.

    The codes are ``first .. first + count - 1``. One UPDATE moves the counter
    for a whole publication. On SQLite the transaction's write lock
    serialises it; on PostgreSQL the counter row's lock, held until commit,
    does: a second publication waits, so codes are committed in the order
    they are given and a client listing "after N" never skips one.
    """
    (last,) = conn.execute(
        "UPDATE sequences SET value = value + ? WHERE name = ? RETURNING value",
        (count, _SEQUENCE),
    ).fetchone()
    return int(last) - count + 1


def lock_counter(conn: Connection) -> None:
    """Take the counter's lock now (PostgreSQL), before locking ``published`` rows.

    Every transaction that allocates codes locks the counter first, then
    rows: one lock order, so two of them never deadlock.
    """
    if conn.dialect == POSTGRESQL:
        conn.execute("SELECT value FROM sequences WHERE name = ? FOR UPDATE", (_SEQUENCE,))


def select_entries(
    conn: Connection,
    peer: str,
    *,
    after_code: int | None,
    start: datetime | None,
    end: datetime | None,
    file_type: str | None,
    limit: int | None,
) -> list[CodedEntry]:
    """``peer``'s published names by code; ``start <= published_at < end``."""
    where = ["peer = ?", "state = 'published'"]
    params: list[object] = [peer]
    if after_code is not None:
        where.append("code > ?")
        params.append(after_code)
    if start is not None:
        where.append("published_at >= ?")
        params.append(to_text(start))
    if end is not None:
        where.append("published_at < ?")
        params.append(to_text(end))
    if file_type is not None:
        where.append("file_type = ?")
        params.append(file_type)
    sql = f"SELECT {_COLUMNS} FROM published WHERE {' AND '.join(where)} ORDER BY code"
    if limit is not None:
        sql += " LIMIT ?"
        params.append(limit)
    times: dict[str, datetime] = {}
    return [_entry(row, times) for row in conn.execute(sql, params).fetchall()]


def select_by_code(conn: Connection, peer: str, code: int, state: str | None) -> CodedEntry | None:
    row = conn.execute(
        f"SELECT {_COLUMNS} FROM published WHERE code = ? AND peer = ?", (code, peer)
    ).fetchone()
    return _matching(row, state)


def select_by_name(conn: Connection, peer: str, name: str, state: str | None) -> CodedEntry | None:
    row = conn.execute(
        f"SELECT {_COLUMNS} FROM published WHERE peer = ? AND name = ?", (peer, name)
    ).fetchone()
    return _matching(row, state)


def _matching(row: tuple | None, state: str | None) -> CodedEntry | None:
    if row is None:
        return None
    entry = _entry(row)
    return entry if state is None or entry.state == state else None


def select_cursor(conn: Connection, peer: str) -> int:
    row = conn.execute("SELECT code FROM iec_cursor WHERE peer = ?", (peer,)).fetchone()
    return int(row[0]) if row is not None else 0


def advance_cursor(conn: Connection, peer: str, code: int, *, rewind: bool = False) -> int:
    """Move ``peer``'s cursor to ``code``: only forwards unless ``rewind``; the cursor after."""
    if isinstance(code, bool) or not isinstance(code, int) or code < 0:
        raise ValueError(f"a message code cursor is an integer >= 0, got {code!r}")
    guard = "" if rewind else " WHERE excluded.code > iec_cursor.code"
    conn.execute(
        "INSERT INTO iec_cursor (peer, code, updated_at) VALUES (?, ?, ?) "
        "ON CONFLICT (peer) DO UPDATE SET code = excluded.code, "
        f"updated_at = excluded.updated_at{guard}",
        (peer, code, to_text(utc_now())),
    )
    return select_cursor(conn, peer)

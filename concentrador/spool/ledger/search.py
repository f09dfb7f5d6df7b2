"""The SQL of the console's file search: sent and received files, filtered, one page.

A sent file is its ``published`` rows grouped by ``original`` (one per block);
a received file is one ``received`` row. Both are filtered *before* the
union (so each side can use its indexes: ``(peer, state, published_at)``,
``(peer, original)``, ``(peer, received_at)``, the time indexes), ordered
newest first and cut to one page by SQL: nothing scales with the table in
Python. Plain functions over a ``backend.Connection``, like ``push.py``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from concentrador.spool.ledger.backend import Connection
from concentrador.spool.ledger.schema import from_text, to_text

__all__ = ["RECEIVED", "SENT", "FilePage", "FileQuery", "FileRow", "build_search", "search"]

SENT = "sent"
RECEIVED = "received"


@dataclass(frozen=True, slots=True)
class FileQuery:
    """The filters of one search; None means "any". ``text`` is a name substring."""

    peer: str | None = None
    file_type: str | None = None
    state: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    text: str | None = None
    offset: int = 0
    limit: int = 50


@dataclass(frozen=True, slots=True)
class FileRow:
    """One file in a search result."""

    direction: str  # SENT (published or pushed by us) or RECEIVED
    peer: str
    name: str  # the whole file's name; its trail key
    file_type: str | None  # None: a received file whose name no prefix classifies
    state: str  # a SpoolState value: published, sending, delivered, ... inbox, manual
    size: int  # bytes, all blocks together
    blocks: int  # 1 for a whole file
    at: datetime  # published_at or received_at
    confirmed_at: datetime | None = None  # received files: when we confirmed them
    reviewed: bool = False  # an operator marked it as reviewed (a trail event)


@dataclass(frozen=True, slots=True)
class FilePage:
    """One page of a search, and how many files match in all."""

    rows: list[FileRow]
    total: int
    offset: int = 0
    limit: int = 50
    filters: FileQuery = field(default_factory=FileQuery)


def _like(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def build_search(query: FileQuery) -> tuple[str, str, list[object]]:
    """(page SQL, count SQL, parameters): tests EXPLAIN exactly what runs."""
    sent_where: list[str] = []
    received_where: list[str] = []
    sent_params: list[object] = []
    received_params: list[object] = []

    def both(sent: str, received: str, value: object) -> None:
        sent_where.append(sent)
        sent_params.append(value)
        received_where.append(received)
        received_params.append(value)

    if query.peer is not None:
        both("peer = ?", "peer = ?", query.peer)
    if query.state is not None:
        both("state = ?", "state = ?", query.state)
    if query.since is not None:
        both("published_at >= ?", "received_at >= ?", to_text(query.since))
    if query.until is not None:
        both("published_at < ?", "received_at < ?", to_text(query.until))
    if query.text:
        both("original LIKE ? ESCAPE '\\'", "name LIKE ? ESCAPE '\\'", _like(query.text))
    if query.file_type is not None:
        both("file_type = ?", "file_type = ?", query.file_type)
    sent = (
        # The blocks of one original share their type and state: MIN() picks
        # it (PostgreSQL refuses a bare column beside GROUP BY; SUM of BIGINT
        # would be NUMERIC there).
        f"SELECT '{SENT}' AS direction, peer, original AS name, MIN(file_type) AS file_type,"
        " MIN(state) AS state, CAST(SUM(size) AS BIGINT) AS size, COUNT(*) AS blocks,"
        " MIN(published_at) AS at,"
        " NULL AS confirmed_at FROM published"
        + (" WHERE " + " AND ".join(sent_where) if sent_where else "")
        + " GROUP BY peer, original"
    )
    received = (
        f"SELECT '{RECEIVED}', peer, name, file_type, state, size, 1, received_at, confirmed_at"
        " FROM received" + (" WHERE " + " AND ".join(received_where) if received_where else "")
    )
    union = f"{sent} UNION ALL {received}"
    page = f"{union} ORDER BY at DESC, peer, name LIMIT ? OFFSET ?"
    count = f"SELECT COUNT(*) FROM ({union}) AS matching"
    return page, count, [*sent_params, *received_params]


def _reviewed(conn: Connection, peer: str, name: str) -> bool:
    # One indexed lookup per row of the page (at most ``limit``).
    row = conn.execute(
        "SELECT 1 FROM events WHERE peer = ? AND name = ? AND kind = 'reviewed' LIMIT 1",
        (peer, name),
    ).fetchone()
    return row is not None


def search(conn: Connection, query: FileQuery) -> FilePage:
    if query.offset < 0 or not 1 <= query.limit <= 1000:
        raise ValueError(f"bad page: offset {query.offset}, limit {query.limit} (1-1000)")
    page_sql, count_sql, params = build_search(query)
    rows = conn.execute(page_sql, (*params, query.limit, query.offset)).fetchall()
    total = conn.execute(count_sql, params).fetchone()[0]
    return FilePage(
        [
            FileRow(
                d,
                p,
                n,
                t,
                s,
                size,
                blocks,
                from_text(at),
                from_text(c) if c else None,
                _reviewed(conn, p, n),
            )
            for d, p, n, t, s, size, blocks, at, c in rows
        ],
        total,
        query.offset,
        query.limit,
        query,
    )

"""IEC 62325-504 message codes (schema v5) and the 504 client's code cursor."""

from __future__ import annotations

import sqlite3
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from concentrador.spool.ledger import CodedEntry, Ledger, PublishedEntry
from concentrador.spool.ledger.schema import MIGRATIONS, SCHEMA_VERSION, statement_for
from tests.spool.ledger.conftest import SQLITE_ONLY, LedgerFactory

T0 = datetime(2024, 3, 1, tzinfo=UTC)


def _file(peer: str, name: str, at: datetime, file_type: str = "CUR") -> PublishedEntry:
    return PublishedEntry(peer, name, name, file_type, 10, "0" * 32, at)


def _codes(ledger: Ledger, peer: str) -> dict[str, int]:
    return {e.name: e.code for e in ledger.coded_entries(peer)}


def _v4_ledger(path: Path, rows: list[tuple[str, str, str, str]]) -> None:
    """A SQLite ledger as version 4 left it, with (peer, name, published_at, state) rows
    (SQLite only: PostgreSQL ledgers start at version 5)."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, applied_at TEXT)")
    for version, statements in MIGRATIONS[:4]:
        for statement in statements:
            conn.execute(statement_for("sqlite", statement))
        conn.execute("INSERT INTO schema_migrations VALUES (?, 'x')", (version,))
    for peer, name, at, state in rows:
        conn.execute(
            "INSERT INTO published (peer, name, original, file_type, size, md5, published_at,"
            " state) VALUES (?, ?, ?, 'CUR', 1, ?, ?, ?)",
            (peer, name, name, "0" * 32, at, state),
        )
    conn.close()


def test_migration_backfills_codes_in_publication_order(tmp_path: Path) -> None:
    path = tmp_path / "l.sqlite3"
    _v4_ledger(
        path,
        [
            ("B", "late", "2024-03-03T00:00:00.000000Z", "published"),
            ("A", "first", "2024-03-01T00:00:00.000000Z", "published"),
            ("A", "gone", "2024-03-02T00:00:00.000000Z", "expired"),
            ("A", "tie-b", "2024-03-02T12:00:00.000000Z", "published"),
            ("B", "tie-a", "2024-03-02T12:00:00.000000Z", "published"),
        ],
    )
    with Ledger(path) as led:
        assert led.schema_version() == SCHEMA_VERSION >= 5
        # Every row is coded, expired ones too; ties by peer then name.
        assert _codes(led, "A") == {"first": 1, "tie-b": 3}
        assert _codes(led, "B") == {"tie-a": 4, "late": 5}
        gone = led.coded_entry("A", 2, state=None)
        assert gone is not None and (gone.name, gone.state) == ("gone", "expired")
        assert led.coded_entry("A", 2) is None  # not published any more
        # New publications continue the sequence.
        led.record_published([_file("A", "new", T0)])
        assert _codes(led, "A")["new"] == 6


def test_migration_of_an_empty_v4_ledger(tmp_path: Path) -> None:
    path = tmp_path / "l.sqlite3"
    _v4_ledger(path, [])
    with Ledger(path) as led:
        led.record_published([_file("A", "x", T0)])
        assert _codes(led, "A") == {"x": 1}


def test_codes_are_monotonic_across_reopen_and_never_reused(open_ledger: LedgerFactory) -> None:
    with open_ledger() as led:
        led.record_published([_file("A", "a1", T0), _file("A", "a2", T0)])
        led.record_published([_file("B", "b1", T0)])
        assert (_codes(led, "A"), _codes(led, "B")) == ({"a1": 1, "a2": 2}, {"b1": 3})
        led.set_state("B", "b1", "expired")
        # The highest code's row is deleted: its code is still never given again.
        with led._transaction() as conn:
            conn.execute("DELETE FROM published WHERE code = 3")
    with open_ledger() as led:
        led.record_published([_file("B", "b2", T0)])
        assert _codes(led, "B") == {"b2": 4}
        # Re-recording a name (a new file under it) is news: a new code.
        led.record_published([_file("A", "a1", T0 + timedelta(hours=1))])
        assert _codes(led, "A") == {"a2": 2, "a1": 5}


def test_republished_file_gets_new_codes(ledger: Ledger) -> None:
    blocks = [PublishedEntry("A", f"F.{k}_2", "F", "CUR", 1, "0" * 32, T0) for k in (1, 2)]
    ledger.record_published([*blocks, _file("A", "other", T0)])
    ledger.set_state("A", "F", "expired")
    assert _codes(ledger, "A") == {"other": 3}
    assert ledger.republish("A", "F", at=T0 + timedelta(days=1), actor="op", reason="again") == 2
    assert _codes(ledger, "A") == {"other": 3, "F.1_2": 4, "F.2_2": 5}
    assert ledger.republish("A", "F", at=T0, actor="op", reason="again") == 0


def test_concurrent_ledgers_never_share_a_code(open_ledger: LedgerFactory) -> None:
    open_ledger().close()
    ledgers = [open_ledger() for _ in range(4)]

    def publish(index: int) -> None:
        for n in range(25):
            ledgers[index].record_published([_file(f"P{index}", f"f{n}", T0)])

    threads = [threading.Thread(target=publish, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    codes = sorted(c for i in range(4) for c in _codes(ledgers[0], f"P{i}").values())
    assert codes == list(range(1, 101))


def test_coded_entries_filters(ledger: Ledger) -> None:
    ledger.record_published(
        [
            _file("A", "c1", T0, "CUR"),
            _file("A", "m1", T0 + timedelta(hours=1), "MAG"),
            _file("A", "c2", T0 + timedelta(hours=2), "CUR"),
            _file("B", "b1", T0, "CUR"),
        ]
    )
    ledger.record_published([_file("A", "d1", T0 + timedelta(hours=3), "CUR")])
    ledger.set_state("A", "d1", "delivered")

    def names(**filters: object) -> list[str]:
        return [e.name for e in ledger.coded_entries("A", **filters)]  # type: ignore[arg-type]

    assert names() == ["c1", "m1", "c2"]  # published only, by code
    assert names(after_code=1) == ["m1", "c2"]
    assert names(after_code=3) == []
    assert names(file_type="CUR") == ["c1", "c2"]
    assert names(start=T0 + timedelta(hours=1)) == ["m1", "c2"]  # start inclusive
    assert names(end=T0 + timedelta(hours=2)) == ["c1", "m1"]  # end exclusive
    assert names(start=T0, end=T0 + timedelta(hours=2), file_type="MAG") == ["m1"]
    assert names(limit=2) == ["c1", "m1"]
    assert names(after_code=1, limit=1) == ["m1"]
    entry = ledger.coded_entry("A", 2)
    assert entry == CodedEntry(
        2, "m1", "m1", "MAG", 10, "0" * 32, T0 + timedelta(hours=1), "published"
    )
    assert ledger.coded_entry("B", 2) is None  # another peer's code
    assert ledger.coded_entry_by_name("A", "c2") == ledger.coded_entry("A", 3)
    assert ledger.coded_entry_by_name("A", "d1") is None
    delivered = ledger.coded_entry_by_name("A", "d1", state=None)
    assert delivered is not None and (delivered.code, delivered.state) == (5, "delivered")
    assert ledger.coded_entry_by_name("A", "nope") is None


@SQLITE_ONLY  # SQLite's query planner and trace callback
def test_after_code_over_many_rows_is_an_index_range_scan(ledger: Ledger) -> None:
    entries = [
        _file(f"P{i % 4}", f"F{i}", T0 + timedelta(seconds=i), "CUR" if i % 2 else "MAG")
        for i in range(12_000)
    ]
    ledger.record_published(entries)
    ledger.set_states("P1", [f"F{i}" for i in range(1, 12_000, 8)], "expired")
    with ledger._transaction() as conn:
        conn.execute("ANALYZE")
    statements: list[str] = []
    raw = ledger._db.connection  # type: ignore[attr-defined]
    raw.set_trace_callback(statements.append)
    try:
        got = ledger.coded_entries("P1", after_code=6_000, file_type="CUR")
    finally:
        raw.set_trace_callback(None)
    expected = [i + 1 for i in range(12_000) if i % 4 == 1 and i % 8 != 1 and i + 1 > 6_000]
    assert [e.code for e in got] == expected
    (sql,) = [s for s in statements if s.startswith("SELECT")]
    plan = [row[-1] for row in raw.execute(f"EXPLAIN QUERY PLAN {sql}")]
    assert any(
        d.startswith(
            "SEARCH published USING INDEX published_peer_code (peer=? AND state=? AND code>?)"
        )
        for d in plan
    ), plan
    assert not any("TEMP B-TREE" in d or d.startswith("SCAN") for d in plan), plan


def test_record_received_advances_the_cursor_in_its_transaction(ledger: Ledger) -> None:
    assert ledger.iec_cursor("REE") == 0
    ledger.record_received("REE", "F1.bz2", "0" * 32, 5, "/s/REE/inbox/F1.bz2", cursor=7)
    assert ledger.iec_cursor("REE") == 7
    assert ledger.iec_cursor("OTHER") == 0
    # Never backwards through record_received.
    ledger.record_received("REE", "F0.bz2", "1" * 32, 5, "/s/REE/inbox/F0.bz2", cursor=3)
    assert ledger.iec_cursor("REE") == 7
    # No cursor: it stays.
    ledger.record_received("REE", "F2.bz2", "2" * 32, 5, "/s/REE/inbox/F2.bz2")
    assert ledger.iec_cursor("REE") == 7
    # One transaction: when the cursor cannot be written, the file is not recorded either.
    with pytest.raises(ValueError, match="cursor"):
        ledger.record_received("REE", "F3.bz2", "3" * 32, 5, "/s/REE/inbox/F3.bz2", cursor=-1)
    assert ledger.received("REE", "F3.bz2") is None
    assert ledger.iec_cursor("REE") == 7


def test_cursor_survives_reopen_and_rewinds_only_when_asked(open_ledger: LedgerFactory) -> None:
    with open_ledger() as led:
        assert led.set_iec_cursor("REE", 10) == 10
        assert led.set_iec_cursor("REE", 4) == 10
    with open_ledger() as led:
        assert led.iec_cursor("REE") == 10
        assert led.set_iec_cursor("REE", 4, rewind=True) == 4
        with pytest.raises(ValueError):
            led.set_iec_cursor("REE", True)
    with open_ledger() as led:
        assert led.iec_cursor("REE") == 4

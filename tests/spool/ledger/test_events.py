"""The ledger's audit trail, the file search and the v2 -> v3 (-> v4) migrations."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from concentrador.protocol.filetypes import TypeClassifier
from concentrador.spool.ledger import SCHEMA_VERSION, EventKind, Ledger, NewEvent, PublishedEntry
from concentrador.spool.ledger.schema import MIGRATIONS, statement_for
from concentrador.spool.ledger.search import FileQuery, build_search
from tests.spool.ledger.conftest import SQLITE_ONLY, LedgerFactory

T0 = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)


def blocks(peer: str, original: str, n: int, at: datetime = T0) -> list[PublishedEntry]:
    return [
        PublishedEntry(peer, f"{original}.{k}_{n}", original, "CUR", 10 * k, f"{k:032x}", at)
        for k in range(1, n + 1)
    ]


def kinds(ledger: Ledger, peer: str, name: str) -> list[str]:
    return [e.kind for e in ledger.events_for(peer, name)]


def test_publication_history_then_published_in_one_transaction(ledger: Ledger) -> None:
    dropped = NewEvent("A", "P1.bz2", EventKind.DROPPED, "outbox/P1 (99 bytes)", T0)
    compressed = NewEvent("A", "P1.bz2", EventKind.COMPRESSED, "99 bytes to 60")
    ledger.record_published(blocks("A", "P1.bz2", 3), history=[dropped, compressed])
    trail = ledger.events_for("A", "P1.bz2")
    assert [e.kind for e in trail] == ["dropped", "compressed", "published"]
    assert trail[0].at == T0 and trail[0].detail == "outbox/P1 (99 bytes)"
    assert trail[2].detail == "CUR, 3 block(s), 60 bytes, in published/"
    assert all(e.actor is None and e.peer == "A" for e in trail)
    assert ledger.events_for("B", "P1.bz2") == []


def test_a_failed_transaction_writes_no_event(ledger: Ledger) -> None:
    bad = PublishedEntry("A", "X.bz2", "X.bz2", "CUR", 1, "0" * 32, datetime(2024, 1, 1))
    with pytest.raises(ValueError):  # a naive timestamp is refused
        ledger.record_published([bad], history=[NewEvent("A", "X.bz2", EventKind.DROPPED)])
    assert ledger.events_for("A", "X.bz2") == []


def test_state_changes_write_their_events(ledger: Ledger) -> None:
    ledger.record_published(blocks("A", "F.bz2", 2))
    assert ledger.set_state("A", "F.bz2", "delivered", detail="code 0") == 2
    assert ledger.set_state("A", "nope", "expired") == 0  # nothing changed, no event
    ledger.set_state("A", "F.bz2", "failed", detail="codigo 4", actor="cli:ana")
    trail = ledger.events_for("A", "F.bz2")
    assert [(e.kind, e.detail, e.actor) for e in trail[1:]] == [
        ("delivered", "code 0", None),
        ("failed", "codigo 4", "cli:ana"),
    ]
    assert ledger.events_for("A", "nope") == []


def test_push_attempts_are_in_the_trail(ledger: Ledger) -> None:
    later = T0 + timedelta(minutes=10)
    ledger.record_push_attempt("A", "F.bz2", error="F.bz2: codigo 5", next_attempt_at=later)
    ledger.record_push_attempt("A", "F.bz2", error="fault Server.Generico", next_attempt_at=None)
    details = [e.detail for e in ledger.events_for("A", "F.bz2")]
    assert details == [
        "attempt 1: F.bz2: codigo 5; next at 2024-03-01T12:10:00.000000Z",
        "attempt 2: fault Server.Generico",
    ]


def test_received_stored_duplicate_replaced_confirmed(ledger: Ledger, tmp_path: Path) -> None:
    manual = tmp_path / "A" / "manual" / "F.bz2"
    ledger.record_received("A", "F.bz2", "a" * 32, 5, manual, blocks=2)
    ledger.record_received("A", "F.bz2", "a" * 32, 5, manual)
    assert ledger.mark_confirmed("A", "F.bz2", at=T0)
    assert not ledger.mark_confirmed("A", "other")
    ledger.record_received("A", "F.bz2", "b" * 32, 6, tmp_path / "A" / "inbox" / "F.bz2")
    trail = ledger.events_for("A", "F.bz2")
    assert [e.kind for e in trail] == [
        "reassembled", "stored", "duplicate", "confirmed", "stored",
    ]  # fmt: skip
    assert trail[1].detail.startswith("in manual/ (5 bytes")
    assert trail[3].at == T0
    assert "archived" in trail[4].detail and trail[4].detail.startswith("in inbox/")
    assert ledger.events_for("A", "other") == []


def test_listed_once_per_publication_and_fetched_per_block(ledger: Ledger) -> None:
    ledger.record_published(blocks("A", "F.bz2", 2))
    assert ledger.note_listed("A", "10.0.0.7") == 1
    assert ledger.note_listed("A", "10.0.0.7") == 0  # listed again: not news
    ledger.note_fetched("A", "F.bz2.2_2", "10.0.0.7")
    ledger.note_fetched("A", "unknown.bz2", None)
    trail = ledger.events_for("A", "F.bz2")
    assert [(e.kind, e.detail) for e in trail[1:]] == [
        ("listed", "to 10.0.0.7"),
        ("fetched", "F.bz2.2_2 (20 bytes) by 10.0.0.7"),
    ]
    ledger.record_published(blocks("A", "F.bz2", 2))  # published anew: listed anew
    assert ledger.note_listed("A", None) == 1


def test_a_ledger_without_trail_changes_state_but_writes_no_event(
    open_ledger: LedgerFactory, tmp_path: Path
) -> None:
    with open_ledger(trail=False) as quiet, open_ledger() as other:
        dropped = NewEvent("A", "F.bz2", EventKind.DROPPED)
        quiet.record_published(blocks("A", "F.bz2", 2), history=[dropped])
        assert quiet.note_listed("A", "10.0.0.7") == 0
        quiet.note_fetched("A", "F.bz2.1_2", "10.0.0.7")
        assert quiet.set_state("A", "F.bz2", "delivered") == 2
        quiet.record_received("A", "R.bz2", "a" * 32, 5, tmp_path / "A" / "inbox" / "R.bz2")
        assert quiet.mark_confirmed("A", "R.bz2")
        quiet.note_event("A", "R.bz2", EventKind.REVIEWED)
        assert quiet.events_for("A", "F.bz2") == quiet.events_for("A", "R.bz2") == []
        assert [e.state for e in quiet.entries_of("A", "F.bz2")] == ["delivered"] * 2
        assert quiet.received("A", "R.bz2").confirmed_at is not None
        # Only that connection is quiet: another process on the same file keeps its trail.
        other.note_event("A", "R.bz2", EventKind.REVIEWED, "checked")
        assert kinds(other, "A", "R.bz2") == ["reviewed"]


def test_migration_from_v2_keeps_rows_and_reads_the_received_folder(tmp_path: Path) -> None:
    # SQLite only: the version-2 file is built by hand (PostgreSQL ledgers start at v5).
    path = tmp_path / "old.sqlite3"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, applied_at TEXT)")
    for version, statements in MIGRATIONS:
        if version > 2:
            break
        for statement in statements:
            conn.execute(statement_for("sqlite", statement))
        conn.execute("INSERT INTO schema_migrations VALUES (?, 'x')", (version,))
    for name, folder in (("A.bz2", "inbox"), ("B.bz2", "manual")):
        conn.execute(
            "INSERT INTO received VALUES ('P', ?, 'm', 1, ?, '2024-01-01T00:00:00.000000Z', NULL)",
            (name, f"/spool/P/{folder}/{name}"),
        )
    conn.commit()
    conn.close()
    with Ledger(path) as led:
        assert led.schema_version() == SCHEMA_VERSION
        states = {(r.name, r.state) for r in led.search_files(peer="P").rows}
        assert states == {("A.bz2", "inbox"), ("B.bz2", "manual")}
        assert led.received("P", "A.bz2") is not None
        assert led.events_for("P", "A.bz2") == []


# -- the file search -------------------------------------------------------------------------


@pytest.fixture
def filled(ledger: Ledger, tmp_path: Path) -> Ledger:
    ledger.record_published(blocks("A", "P1_a.bz2", 3, T0))
    ledger.record_published(blocks("A", "F1_b.bz2", 1, T0 + timedelta(hours=1)))
    ledger.record_published(blocks("B", "F1_c.bz2", 2, T0 + timedelta(hours=2)))
    ledger.set_state("A", "F1_b.bz2", "expired")
    inbox = tmp_path / "A" / "inbox"
    ledger.record_received("A", "F5_in.bz2", "d" * 32, 7, inbox / "F5_in.bz2", received_at=T0)
    return ledger


def test_search_filters_and_pages(filled: Ledger) -> None:
    page = filled.search_files()
    assert page.total == 4
    assert [(r.direction, r.peer, r.name) for r in page.rows] == [
        ("sent", "B", "F1_c.bz2"),
        ("sent", "A", "F1_b.bz2"),
        ("received", "A", "F5_in.bz2"),
        ("sent", "A", "P1_a.bz2"),
    ]
    p1 = page.rows[3]
    assert (p1.blocks, p1.size, p1.state, p1.file_type, p1.at) == (3, 60, "published", "CUR", T0)
    assert [r.name for r in filled.search_files(peer="A", state="expired").rows] == ["F1_b.bz2"]
    assert filled.search_files(state="inbox").rows[0].name == "F5_in.bz2"
    # Received files are typed by their name too: F5_ is CUR in the shipped table.
    assert [(r.direction, r.name) for r in filled.search_files(file_type="CUR").rows][-2:] == [
        ("received", "F5_in.bz2"),
        ("sent", "P1_a.bz2"),
    ]
    assert filled.search_files(file_type="INC").total == 0
    since = filled.search_files(since=T0 + timedelta(minutes=30), until=T0 + timedelta(hours=2))
    assert [r.name for r in since.rows] == ["F1_b.bz2"]
    assert [r.name for r in filled.search_files(text="1_b").rows] == ["F1_b.bz2"]
    assert filled.search_files(text="%").total == 0  # LIKE wildcards are literal
    second = filled.search_files(offset=1, limit=2)
    assert (second.total, [r.name for r in second.rows]) == (4, ["F1_b.bz2", "F5_in.bz2"])
    with pytest.raises(ValueError):
        filled.search_files(limit=0)


def test_received_files_are_typed_by_the_ledger_classifier(
    open_ledger: LedgerFactory, tmp_path: Path
) -> None:
    inbox = tmp_path / "A" / "inbox"
    classifier = TypeClassifier({"F1": "CUR", "INCI*": "INC"})
    with open_ledger(classifier=classifier) as led:
        for name in ("INCIDENCIAS_0086_1.bz2", "F1_0086_2.bz2", "ZZ_unknown.bz2"):
            led.record_received("A", name, "e" * 32, 3, inbox / name, received_at=T0)
        types = {r.name: r.file_type for r in led.search_files().rows}
        assert types == {
            "INCIDENCIAS_0086_1.bz2": "INC", "F1_0086_2.bz2": "CUR", "ZZ_unknown.bz2": None,
        }  # fmt: skip
        assert [r.name for r in led.search_files(file_type="INC").rows] == [
            "INCIDENCIAS_0086_1.bz2"
        ]
        # A reloaded config's table types the files received from then on.
        led.classifier = TypeClassifier({"ZZ": "OBJ"})
        led.record_received("A", "ZZ_later.bz2", "f" * 32, 3, inbox / "ZZ_later.bz2")
        assert [r.name for r in led.search_files(file_type="OBJ").rows] == ["ZZ_later.bz2"]


def test_search_shows_reviewed(filled: Ledger) -> None:
    filled.note_event("A", "F1_b.bz2", EventKind.REVIEWED, "checked", actor="cli:ana")
    rows = {r.name: r.reviewed for r in filled.search_files(peer="A").rows}
    assert rows == {"F1_b.bz2": True, "F5_in.bz2": False, "P1_a.bz2": False}


@SQLITE_ONLY  # SQLite's query planner (EXPLAIN QUERY PLAN)
def test_search_of_100000_rows_uses_indexes(ledger: Ledger) -> None:
    # 60,000 block rows (20,000 files) sent and 40,000 files received, over 4 peers.
    sent = [
        (f"P{i % 4}", f"F{i}.bz2.{k}_3", f"F{i}.bz2", "CUR", 100, "0" * 32,
         f"2024-01-{1 + i % 28:02d}T00:00:00.000000Z", "published" if i % 3 else "delivered")
        for i in range(20_000) for k in (1, 2, 3)
    ]  # fmt: skip
    received = [
        (f"P{i % 4}", f"R{i}.bz2", "0" * 32, 100, f"/s/P/inbox/R{i}.bz2",
         f"2024-02-{1 + i % 28:02d}T00:00:00.000000Z", None, "inbox", "CUR" if i % 2 else None)
        for i in range(40_000)
    ]  # fmt: skip
    with ledger._transaction() as conn:
        conn.executemany("INSERT INTO published VALUES (?, ?, ?, ?, ?, ?, ?, ?, NULL, NULL)", sent)
        conn.executemany("INSERT INTO received VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", received)
        conn.execute("ANALYZE")
    page = ledger.search_files(peer="P1", state="published", limit=20)
    expected = sum(1 for i in range(20_000) if i % 4 == 1 and i % 3)
    assert (len(page.rows), page.total) == (20, expected)
    newest = max(1 + i % 28 for i in range(20_000) if i % 4 == 1 and i % 3)
    assert page.rows[0].at == datetime(2024, 1, newest, tzinfo=UTC)  # newest first
    late = sum(1 for i in range(40_000) if i % 4 == 2 and 1 + i % 28 >= 27)
    assert ledger.search_files(peer="P2", since=datetime(2024, 2, 27, tzinfo=UTC)).total == late
    expectations = {
        # A peer (and state) filter: both sides are index searches.
        FileQuery(peer="P1", state="published"): ("SEARCH published", "SEARCH received"),
        # A date filter: the time index narrows the received side.
        FileQuery(peer="P2", since=datetime(2024, 2, 27, tzinfo=UTC)): (
            "SEARCH published",
            "SEARCH received USING INDEX received_peer_time",
        ),
        FileQuery(since=datetime(2024, 2, 27, tzinfo=UTC)): (
            "SEARCH received USING INDEX received_time",
        ),
        # A type filter alone: the received side searches its type index (the sent
        # side walks the (peer, original) index it groups by, as without a filter).
        FileQuery(file_type="CUR"): ("SEARCH received USING INDEX received_type_time",),
    }
    for query, wanted in expectations.items():
        page_sql, _count_sql, params = build_search(query)
        raw = ledger._db.connection  # type: ignore[attr-defined]
        plan = raw.execute(f"EXPLAIN QUERY PLAN {page_sql}", (*params, 50, 0))
        details = [row[-1] for row in plan]
        for fragment in wanted:
            assert any(d.startswith(fragment) for d in details), (fragment, details)
        # Neither table is ever read without an index.
        assert not {"SCAN published", "SCAN received"} & set(details), details

"""``Ledger.deliver``, the confirmation's commit point, on both ledger backends:
only still-published names are marked, read and written in one transaction,
one ``delivered`` event per original; and the SQLite plans it (and
``entries_of``) use: the few rows of one original, not every row of the peer."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from concentrador.spool.ledger import Ledger, PublishedEntry
from tests.spool.ledger import conftest as backends

# The ledger tests' fixtures (registered under these names): ``ledger`` on
# SQLite and on PostgreSQL (skipped without it, as in tests/spool/ledger).
backend, ledger = backends.backend, backends.ledger
open_ledger, ledger_postgres = backends.open_ledger, backends.ledger_postgres

AT = datetime(2024, 3, 1, tzinfo=UTC)
SPLIT = "P1_0086_20240301.0.bz2"
BLOCKS = [f"{SPLIT}.{k}_12" for k in (12, 2, 1, 10)]  # sorted: 1, 10, 12, 2


def publish(ledger: Ledger, original: str, names: list[str], peer: str = "CREC") -> None:
    ledger.record_published(
        PublishedEntry(peer, n, original, "CUR", 10, "0" * 32, AT) for n in names
    )


def test_deliver_marks_only_published_names_with_one_event_per_original(
    ledger: Ledger,
) -> None:
    publish(ledger, SPLIT, BLOCKS)
    publish(ledger, "A.bz2", ["A.bz2"])
    publish(ledger, "GONE.bz2", ["GONE.bz2"])
    publish(ledger, "A.bz2", ["A.bz2"], peer="OTHER")
    ledger.set_state("CREC", "GONE.bz2", "expired")

    accepted = ledger.deliver("CREC", [SPLIT, "A.bz2", "GONE.bz2", "NONE.bz2", "A.bz2"], "code 0")

    assert accepted == {SPLIT: sorted(BLOCKS), "A.bz2": ["A.bz2"]}
    assert {e.state for e in ledger.entries_of("CREC", SPLIT)} == {"delivered"}
    assert ledger.lookup("CREC", "GONE.bz2").state == "expired"
    assert ledger.lookup("OTHER", "A.bz2").state == "published"  # another peer's
    trail = [(e.kind, e.detail) for e in ledger.events_for("CREC", "A.bz2")]
    assert trail == [("published", "CUR, 1 block(s), 10 bytes, in published/"),
                     ("delivered", "code 0")]  # fmt: skip
    assert [e.kind for e in ledger.events_for("CREC", SPLIT)].count("delivered") == 1
    # Nothing left to deliver: a second confirmation finds nothing, writes nothing.
    assert ledger.deliver("CREC", ["A.bz2"], "code 0") == {}
    assert len(ledger.events_for("CREC", "A.bz2")) == 2


def test_entries_of_lists_the_blocks_in_name_order(ledger: Ledger) -> None:
    publish(ledger, SPLIT, BLOCKS)
    assert [e.name for e in ledger.entries_of("CREC", SPLIT)] == sorted(BLOCKS)


def test_deliver_without_a_trail_still_marks(tmp_path: Path) -> None:
    with Ledger(tmp_path / "l.db", trail=False) as quiet:
        publish(quiet, "A.bz2", ["A.bz2"])
        assert quiet.deliver("CREC", ["A.bz2"], "code 0") == {"A.bz2": ["A.bz2"]}
        assert quiet.lookup("CREC", "A.bz2").state == "delivered"
        assert quiet.events_for("CREC", "A.bz2") == []


def test_one_originals_rows_are_found_by_their_index(tmp_path: Path) -> None:
    """Without ANALYZE, ``ORDER BY name`` or ``state = 'published'`` in the WHERE
    made SQLite walk the (peer, name) or (peer, state) index: every row of the
    peer (its whole history, or every published file) per confirmation.
    (SQLite's own planner, hence a file of its own, not both backends.)"""
    with Ledger(tmp_path / "l.db") as fresh:
        raw = fresh._db.connection  # type: ignore[attr-defined]
        statements: list[str] = []
        raw.set_trace_callback(statements.append)
        publish(fresh, "A.bz2", ["A.bz2"])
        statements.clear()
        fresh.entries_of("CREC", "A.bz2")
        fresh.deliver("CREC", ["A.bz2"], "code 0")
        raw.set_trace_callback(None)
        selects = [s for s in statements if s.startswith("SELECT") and "FROM published" in s]
        assert len(selects) == 2
        for sql in selects:
            plan = " ".join(row[-1] for row in raw.execute(f"EXPLAIN QUERY PLAN {sql}"))
            assert "published_original" in plan, (sql, plan)

import sqlite3
import threading
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from concentrador.spool.ledger import SCHEMA_VERSION, Ledger, LedgerError, PublishedEntry
from concentrador.spool.ledger.schema import MIGRATIONS, statement_for
from tests.spool.ledger.conftest import LedgerFactory

T0 = datetime(2024, 3, 31, 0, 30, tzinfo=UTC)


def _blocks(peer: str, original: str, n: int, at: datetime) -> list[PublishedEntry]:
    return [
        PublishedEntry(peer, f"{original}.{k}_{n}", original, "CUR", 100 + k, f"{k:032x}", at)
        for k in range(1, n + 1)
    ]


def test_published_round_trip_survives_reopen(open_ledger: LedgerFactory) -> None:
    madrid = timezone(timedelta(hours=2))
    whole = PublishedEntry("A", "F1.bz2", "F1.bz2", "CUR", 10, "ab" * 16, T0.astimezone(madrid))
    with open_ledger() as led:
        led.record_published([whole, *_blocks("A", "P1.bz2", 3, T0)])
    with open_ledger() as led:
        assert led.schema_version() == SCHEMA_VERSION
        got = led.lookup("A", "F1.bz2")
        assert got == PublishedEntry("A", "F1.bz2", "F1.bz2", "CUR", 10, "ab" * 16, T0)
        assert got is not None and got.published_at.tzinfo is not None
        names = [e.name for e in led.entries_for("A")]
        assert names == ["F1.bz2", "P1.bz2.1_3", "P1.bz2.2_3", "P1.bz2.3_3"]
        assert led.lookup("B", "F1.bz2") is None
        assert led.listing("A")[:2] == [("F1.bz2", "CUR", 10), ("P1.bz2.1_3", "CUR", 101)]
        assert led.listing("A", "expired") == []
        assert led.entries_for("B") == []


def test_set_state_moves_all_blocks_of_an_original(ledger: Ledger) -> None:
    ledger.record_published(_blocks("A", "P1", 3, T0) + _blocks("A", "P2", 2, T0))
    assert ledger.set_state("A", "P1", "delivered") == 3
    assert [e.name for e in ledger.entries_for("A")] == ["P2.1_2", "P2.2_2"]
    assert {e.state for e in ledger.entries_for("A", "delivered")} == {"delivered"}
    assert len(ledger.entries_of("A", "P1")) == 3
    assert ledger.set_state("A", "nope", "delivered") == 0


def test_published_before_only_lists_still_published_originals(ledger: Ledger) -> None:
    ledger.record_published(_blocks("A", "old", 2, T0))
    ledger.record_published(_blocks("A", "done", 1, T0))
    ledger.record_published(_blocks("A", "new", 1, T0 + timedelta(days=5)))
    ledger.record_published(_blocks("B", "other", 1, T0))
    ledger.set_state("A", "done", "delivered")
    assert ledger.published_before("A", T0 + timedelta(days=1)) == ["old"]
    assert ledger.published_before("A", T0) == []
    assert ledger.published_before("A", T0 + timedelta(days=6)) == ["new", "old"]


def test_naive_datetimes_are_refused(ledger: Ledger) -> None:
    with pytest.raises(ValueError):
        ledger.published_before("A", datetime(2024, 1, 1))


def test_sizes_over_4_gib_and_byte_order_of_names(ledger: Ledger) -> None:
    # BIGINT on PostgreSQL (SQLite's INTEGER is 64-bit already); names sort
    # by bytes on both ("C" collation), whatever the database's locale.
    huge = 5 * 2**30
    names = ["a.bz2", "B.bz2", "_x.bz2", "Z.1_2", "z.bz2", "ñ.bz2"]
    ledger.record_published([PublishedEntry("A", n, n, "CUR", huge, "0" * 32, T0) for n in names])
    assert [e.name for e in ledger.entries_for("A")] == sorted(names, key=str.encode)
    assert {e.size for e in ledger.entries_for("A")} == {huge}
    assert ledger.search_files(peer="A", text="a.bz2").rows[0].size == huge
    ledger.record_received("A", "R.bz2", "0" * 32, huge, "/s/A/inbox/R.bz2")
    assert ledger.received("A", "R.bz2").size == huge  # type: ignore[union-attr]


def test_record_published_is_one_transaction(ledger: Ledger, open_ledger: LedgerFactory) -> None:
    good = _blocks("A", "P", 2, T0)
    bad = PublishedEntry("A", "X", "X", "CUR", 1, "m", datetime(2024, 1, 1))  # naive
    with pytest.raises(ValueError):
        ledger.record_published([*good, bad])
    assert ledger.entries_for("A") == []
    broken = PublishedEntry("A", "Y", "Y", "CUR", None, "m", T0)  # type: ignore[arg-type]
    with pytest.raises(open_ledger.integrity_errors):
        ledger.record_published([*good, broken])
    assert ledger.entries_for("A") == []


def test_unclassified_notes(ledger: Ledger) -> None:
    ledger.note_unclassified("A", "outbox/zz.txt", "no type for prefix 'zz'")
    first = ledger.unclassified("A")
    ledger.note_unclassified("A", "outbox/zz.txt", "still no type")
    again = ledger.unclassified("A")
    assert [(u.path, u.reason) for u in again] == [("outbox/zz.txt", "still no type")]
    path, reason, since = again[0]  # also unpacks as (path, reason, since)
    assert (path, reason, since.tzinfo) == ("outbox/zz.txt", "still no type", UTC)
    assert again[0].since == first[0].since  # "since" is when it first went wrong
    assert ledger.unclassified("B") == []
    ledger.clear_unclassified("A", "outbox/zz.txt")
    assert ledger.unclassified("A") == []


def test_received_and_confirmation(ledger: Ledger) -> None:
    ledger.record_received("A", "F1.bz2", "aa" * 16, 5, "/s/A/inbox/F1.bz2", received_at=T0)
    ledger.record_received("A", "F2.bz2", "bb" * 16, 6, "/s/A/inbox/F2.bz2")
    assert [e.name for e in ledger.unconfirmed("A")] == ["F1.bz2", "F2.bz2"]
    assert ledger.mark_confirmed("A", "F1.bz2", at=T0) is True
    assert ledger.mark_confirmed("A", "ghost") is False
    entry = ledger.received("A", "F1.bz2")
    assert entry is not None and entry.confirmed_at == T0 and entry.received_at == T0
    assert [e.name for e in ledger.unconfirmed("A")] == ["F2.bz2"]
    # The identical file again keeps the confirmation; a different one resets it.
    ledger.record_received("A", "F1.bz2", "aa" * 16, 5, "/s/A/inbox/F1.bz2")
    assert ledger.received("A", "F1.bz2").confirmed_at == T0  # type: ignore[union-attr]
    ledger.record_received("A", "F1.bz2", "cc" * 16, 7, "/s/A/inbox/F1.bz2")
    entry = ledger.received("A", "F1.bz2")
    assert entry is not None and entry.confirmed_at is None and entry.md5 == "cc" * 16
    assert ledger.received("B", "F1.bz2") is None


def test_push_state(ledger: Ledger) -> None:
    assert ledger.push_state("A", "F") is None
    first = ledger.record_push_attempt("A", "F", error="timeout", next_attempt_at=T0)
    assert (first.attempts, first.last_error, first.next_attempt_at) == (1, "timeout", T0)
    second = ledger.record_push_attempt("A", "F", error="code 2", next_attempt_at=None)
    assert (second.attempts, second.last_error, second.next_attempt_at) == (2, "code 2", None)
    assert ledger.push_state("A", "F") == second
    assert ledger.push_states("A") == [second]
    ledger.clear_push_state("A", "F")
    assert ledger.push_state("A", "F") is None


def test_outside_window_marks(ledger: Ledger) -> None:
    assert ledger.marked_outside_window("A", ["P.1_2", "P.2_2"]) == []
    ledger.note_outside_window("A", "P.2_2")
    ledger.note_outside_window("A", "P.2_2")  # a re-sent block: still one mark
    ledger.note_outside_window("B", "P.1_2")
    assert ledger.marked_outside_window("A", ["P.1_2", "P.2_2", "Q.1_1"]) == ["P.2_2"]
    assert ledger.marked_outside_window("A", []) == []
    ledger.clear_outside_window("A", ["P.1_2", "P.2_2"])
    assert ledger.marked_outside_window("A", ["P.2_2"]) == []
    assert ledger.marked_outside_window("B", ["P.1_2"]) == ["P.1_2"]  # other peers untouched


def test_outside_window_marks_of_a_huge_set(ledger: Ledger) -> None:
    # More names than SQLite allows host parameters in one statement.
    names = [f"P.{k}_5000" for k in range(1, 5001)]
    for name in names[::1000]:
        ledger.note_outside_window("A", name)
    assert ledger.marked_outside_window("A", names) == sorted(names[::1000])
    ledger.clear_outside_window("A", names)
    assert ledger.marked_outside_window("A", names) == []


def test_version_1_ledger_is_migrated_and_keeps_its_rows(tmp_path: Path) -> None:
    # SQLite only: the version-1 file is built by hand (no PostgreSQL ledger was ever v1).
    path = tmp_path / "l.sqlite3"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, applied_at TEXT)")
    for statement in MIGRATIONS[0][1]:
        conn.execute(statement_for("sqlite", statement))
    conn.execute("INSERT INTO schema_migrations VALUES (1, 'x')")
    conn.execute("INSERT INTO kv VALUES ('A', 'k', 'v', 'x')")
    conn.commit()
    conn.close()
    with Ledger(path) as led:
        assert led.schema_version() == SCHEMA_VERSION
        assert led.status("A") == {"k": "v"}
        led.note_outside_window("A", "P.1_2")
        assert led.marked_outside_window("A", ["P.1_2"]) == ["P.1_2"]


def test_status_kv(ledger: Ledger) -> None:
    ledger.set_status("A", "clock_offset", "1.5")
    ledger.set_status("A", "last_cycle", "ok")
    ledger.set_status("A", "clock_offset", "-0.2")
    assert ledger.status("A") == {"clock_offset": "-0.2", "last_cycle": "ok"}
    assert ledger.status("B") == {}


def test_newer_schema_is_refused(open_ledger: LedgerFactory) -> None:
    with open_ledger() as led, led._transaction() as conn:
        conn.execute("INSERT INTO schema_migrations VALUES (?, 'x')", (SCHEMA_VERSION + 1,))
    with pytest.raises(LedgerError, match="newer"):
        open_ledger()


def test_garbage_file_is_a_ledger_error(tmp_path: Path) -> None:
    # SQLite only: a file that is not a database.
    path = tmp_path / "l.sqlite3"
    path.write_bytes(b"not a database" * 100)
    with pytest.raises(LedgerError):
        Ledger(path)


def test_concurrent_threads_and_second_connection(open_ledger: LedgerFactory) -> None:
    led, other = open_ledger(), open_ledger()

    def work(i: int) -> None:
        for j in range(20):
            target = led if j % 2 else other
            target.record_push_attempt("A", f"F{i}", error=None, next_attempt_at=None)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [s.attempts for s in led.push_states("A")] == [20, 20, 20, 20]

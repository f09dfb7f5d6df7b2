"""Several ledgers on one database at once (replicas; the daemon and the CLI), on both backends.

SQLite serialises writers with its file's write lock; PostgreSQL runs READ
COMMITTED, where the ledger takes row and advisory locks of its own for each
read-then-write. These tests race two or more ledgers on the same database
and check that every such place still happens once.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from concentrador.spool.ledger import SCHEMA_VERSION, EventKind, Ledger, LedgerError, PublishedEntry
from concentrador.spool.ledger.postgres_db import describe_url, psycopg_missing, to_pyformat
from tests.spool.ledger.conftest import LedgerFactory

T0 = datetime(2024, 3, 1, tzinfo=UTC)


def race(count: int, work: Callable[[int], object]) -> list[object]:
    """Run ``work(0..count-1)`` in threads released together; their results, in order."""
    barrier = threading.Barrier(count)
    results: list[object] = [None] * count
    errors: list[BaseException] = []

    def run(index: int) -> None:
        try:
            barrier.wait()
            results[index] = work(index)
        except BaseException as exc:  # re-raised below, in the test's thread
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    return results


def files(peer: str, count: int, prefix: str = "F") -> list[PublishedEntry]:
    return [
        PublishedEntry(peer, f"{prefix}{i}.bz2", f"{prefix}{i}.bz2", "CUR", 1, "0" * 32, T0)
        for i in range(count)
    ]


def test_replicas_starting_together_migrate_once(open_ledger: LedgerFactory) -> None:
    ledgers = race(4, lambda _: open_ledger())
    assert all(isinstance(led, Ledger) for led in ledgers)
    first = ledgers[0]
    assert isinstance(first, Ledger) and first.schema_version() == SCHEMA_VERSION
    with first._transaction() as conn:
        versions = [row[0] for row in conn.execute("SELECT version FROM schema_migrations")]
    assert sorted(versions) == list(range(1, SCHEMA_VERSION + 1))


def test_a_file_is_listed_once_when_two_replicas_list_at_once(open_ledger: LedgerFactory) -> None:
    a, b = open_ledger(), open_ledger()
    for round_ in range(5):
        a.record_published(files("P", 20, f"R{round_}_"))
        counts = race(2, lambda i: (a, b)[i].note_listed("P", f"10.0.0.{i}"))
        assert sum(counts) == 20  # type: ignore[arg-type]
    for round_ in range(5):
        for i in range(20):
            assert [e.kind for e in a.events_for("P", f"R{round_}_{i}.bz2")] == [
                "published",
                "listed",
            ]


def test_an_expired_file_is_republished_once(open_ledger: LedgerFactory) -> None:
    ledgers = [open_ledger() for _ in range(3)]
    blocks = [PublishedEntry("P", f"F.{k}_3", "F", "CUR", 1, "0" * 32, T0) for k in (1, 2, 3)]
    ledgers[0].record_published(blocks)
    for round_ in range(5):
        ledgers[0].set_state("P", "F", "expired")
        at = T0 + timedelta(days=round_ + 1)
        changed = race(
            3, lambda i, at=at: ledgers[i].republish("P", "F", at=at, actor="op", reason="r")
        )
        assert sorted(changed) == [0, 0, 3]  # type: ignore[type-var]
    trail = [e.kind for e in ledgers[0].events_for("P", "F")]
    assert trail.count("republished") == 5
    codes = sorted(e.code for e in ledgers[0].coded_entries("P"))
    assert len(codes) == len(set(codes)) == 3


def test_the_same_file_stored_by_two_replicas_is_stored_then_duplicate(
    open_ledger: LedgerFactory, tmp_path: Path
) -> None:
    a, b = open_ledger(), open_ledger()
    for n in range(10):
        name = f"R{n}.bz2"
        race(
            2,
            lambda i, name=name: (a, b)[i].record_received("P", name, "a" * 32, 5, tmp_path / name),
        )
        assert sorted(e.kind for e in a.events_for("P", name)) == ["duplicate", "stored"]


def test_codes_from_concurrent_publications_are_unique_and_gapless(
    open_ledger: LedgerFactory,
) -> None:
    ledgers = [open_ledger() for _ in range(4)]
    race(4, lambda i: [ledgers[i].record_published(files(f"P{i}", 3, f"n{k}_")) for k in range(10)])
    codes = sorted(e.code for i in range(4) for e in ledgers[0].coded_entries(f"P{i}"))
    assert codes == list(range(1, 121))


def test_check_writable_and_events_without_durability(ledger: Ledger) -> None:
    ledger.check_writable()
    ledger.note_event("P", "F.bz2", EventKind.REVIEWED, durable=False)
    assert [e.kind for e in ledger.events_for("P", "F.bz2")] == ["reviewed"]


# -- PostgreSQL specifics that need no server ------------------------------------------------


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        ("SELECT a FROM t WHERE b = ? AND c = ?", "SELECT a FROM t WHERE b = %s AND c = %s"),
        ("SELECT '?', \"?\" FROM t WHERE x LIKE ? ESCAPE '\\'",
         "SELECT '?', \"?\" FROM t WHERE x LIKE %s ESCAPE '\\'"),
        ("UPDATE r SET s = 'm' WHERE p LIKE '%/manual/%'",
         "UPDATE r SET s = 'm' WHERE p LIKE '%%/manual/%%'"),
        ("SELECT 'it''s ?' , ?", "SELECT 'it''s ?' , %s"),
    ],
)  # fmt: skip
def test_placeholders_are_rewritten_outside_quotes(sql: str, expected: str) -> None:
    assert to_pyformat(sql) == expected


def test_unterminated_quote_is_refused() -> None:
    with pytest.raises(ValueError, match="unterminated"):
        to_pyformat("SELECT 'oops")


def test_a_missing_psycopg_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "psycopg" else real(name)
    )
    assert "concentrador[postgresql]" in (psycopg_missing() or "")
    with pytest.raises(LedgerError, match=r"needs the psycopg module.*concentrador\[postgresql\]"):
        Ledger(url="postgresql://nobody@127.0.0.1:1/none")


@pytest.mark.skipif(psycopg_missing() is not None, reason="psycopg not installed")
def test_an_unreachable_server_is_a_ledger_error_without_the_password() -> None:
    url = "postgresql://app:s3cret@127.0.0.1:1/ledger"
    assert describe_url(url) == "postgresql://app@127.0.0.1:1/ledger"
    shown = re.escape("cannot open ledger postgresql://app@127.0.0.1:1/ledger")
    with pytest.raises(LedgerError, match=shown) as info:
        Ledger(url=url, timeout=2)
    assert "s3cret" not in str(info.value)

"""The ledger tests run on both backends: SQLite (a file per test) and PostgreSQL.

``ledger`` (overriding the one of tests/conftest.py here) and ``open_ledger``
are parametrized over ``sqlite`` and ``postgresql``; ``open_ledger(**kwargs)``
opens one more :class:`Ledger` on the same database (a reopen, a second
process, a replica). PostgreSQL is a real server (``tests/scaleout/postgres.py``:
``initdb`` in a temporary folder as a non-root user, stopped by PID), started
once per session only if a PostgreSQL test runs, with a new database per test.
Without PostgreSQL or psycopg installed those tests skip, except in CI or with
``CONCENTRADOR_REQUIRE_SCALEOUT=1``, where they fail.

A test that is about SQLite itself (EXPLAIN QUERY PLAN, a file on disk,
building an old schema by hand) takes ``tmp_path`` and ``Ledger(path)``
directly, or is marked :data:`SQLITE_ONLY`.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from concentrador.spool.ledger import Ledger
from tests.scaleout.postgres import PostgresServer
from tests.scaleout.processes import REQUIRE_ENV, ToolMissing, required

BACKENDS = ("sqlite", "postgresql")
SQLITE_ONLY = pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
"""For tests of SQLite's own behaviour (its query plans, its file); say why at the test."""


class LedgerFactory:
    """Opens ledgers on one test's database; closes them all after the test."""

    def __init__(self, backend: str, path: Path, url: str | None) -> None:
        self.backend = backend
        self.path = path
        self.url = url
        self.opened: list[Ledger] = []
        errors: list[type[Exception]] = [sqlite3.IntegrityError]
        if url is not None:
            import psycopg

            errors.append(psycopg.errors.IntegrityError)
        self.integrity_errors = tuple(errors)
        """What a constraint violation raises on this backend."""

    def __call__(self, **kwargs: Any) -> Ledger:
        ledger = Ledger(self.path, url=self.url, **kwargs)
        self.opened.append(ledger)
        return ledger

    def close_all(self) -> None:
        for ledger in self.opened:
            ledger.close()


@pytest.fixture(scope="session")
def ledger_postgres() -> Iterator[PostgresServer]:
    try:
        server = PostgresServer()
    except ToolMissing as exc:
        if required():
            pytest.fail(f"PostgreSQL ledger tests required (CI or {REQUIRE_ENV}=1): {exc}")
        pytest.skip(str(exc))
    with server:
        yield server


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def open_ledger(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[LedgerFactory]:
    server: PostgresServer | None = None
    url = None
    if backend == "postgresql":
        server = request.getfixturevalue("ledger_postgres")
        url = server.create_database(request.node.name)
    factory = LedgerFactory(backend, tmp_path / "ledger.sqlite3", url)
    try:
        yield factory
    finally:
        factory.close_all()
        if server is not None and url is not None:
            server.drop_database(url)


@pytest.fixture
def ledger(open_ledger: LedgerFactory) -> Ledger:
    """A fresh ledger on each backend, closed after the test."""
    return open_ledger()

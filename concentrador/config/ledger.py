"""``[ledger]``: where the ledger lives. Absent: SQLite, the default.

Without the table (or without ``url``), the ledger is the SQLite file
``<spool>/ledger.sqlite3``, as always. ``url = "postgresql://..."`` puts it
in that PostgreSQL database instead, which several replicas of the daemon
share (docs/deploy.md); that needs the ``postgresql`` extra (psycopg 3 and
psycopg-pool), checked here so that ``check-config`` says so before a start.
"""

from __future__ import annotations

import importlib.util
from typing import Any
from urllib.parse import urlsplit

from concentrador.config.checks import Checker
from concentrador.config.model import LedgerConfig

__all__ = ["LEDGER_KEYS", "POSTGRESQL_SCHEMES", "read_ledger"]

LEDGER_KEYS = ("url", "pool_size")
POSTGRESQL_SCHEMES = ("postgresql", "postgres")


def read_ledger(checker: Checker, raw: object) -> LedgerConfig | None:
    """The ``[ledger]`` table (absent: SQLite); None after a problem."""
    table: dict[str, Any] | None = checker.table(raw, "ledger", LEDGER_KEYS)
    if table is None:
        return None
    default = LedgerConfig()
    url = checker.string(table, "url", "ledger", None)
    pool_size = checker.integer(
        table, "pool_size", "ledger", default.pool_size, minimum=1, maximum=1000
    )
    if pool_size is None:
        return None
    if url is None:
        if "url" in table:
            return None  # not a string: already a problem
        if "pool_size" in table:
            checker.problem("ledger.pool_size", "only used with ledger.url (PostgreSQL)")
            return None
        return default
    scheme = urlsplit(url).scheme
    if scheme not in POSTGRESQL_SCHEMES:
        # Never echo the URL: it may hold a password.
        checker.problem(
            "ledger.url",
            f"expected a postgresql://user@host:port/database URL, got scheme {scheme!r} "
            "(leave ledger.url out for the default SQLite ledger in the spool)",
        )
        return None
    for module in ("psycopg", "psycopg_pool"):
        if importlib.util.find_spec(module) is None:
            checker.problem(
                "ledger.url",
                f"a PostgreSQL ledger needs the {module} module, not installed: "
                "pip install 'concentrador[postgresql]'",
            )
            return None
    return LedgerConfig(url, pool_size)

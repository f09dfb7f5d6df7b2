"""The PostgreSQL ledger database (``[ledger] url = "postgresql://..."``), for replicas.

psycopg 3 with a :class:`psycopg_pool.ConnectionPool`. Connections are in
autocommit mode: a read is one statement and one round trip; a write is an
explicit transaction (``BEGIN`` ... ``COMMIT``) at the default READ COMMITTED
isolation, the few read-then-write places taking locks of their own
(``backend.lock``, ``backend.for_update``, the counter row of ``codes.py``).
``durable=False`` commits with ``synchronous_commit = off`` (the event may be
lost in a crash of the server, never half-written).

The SQL modules write ``?`` placeholders; :func:`to_pyformat` rewrites them to
psycopg's ``%s`` once per distinct statement (cached), outside quoted literals,
doubling any literal ``%``. psycopg's default rows are tuples, as SQLite's.
"""

from __future__ import annotations

import functools
import importlib.util
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from concentrador.spool.ledger.backend import POSTGRESQL, Connection, Dialect
from concentrador.spool.ledger.schema import LedgerError

if TYPE_CHECKING:
    import psycopg

__all__ = [
    "DEFAULT_POOL_SIZE",
    "PostgresDatabase",
    "describe_url",
    "psycopg_missing",
    "to_pyformat",
]

DEFAULT_POOL_SIZE = 10
INSTALL_HINT = "pip install 'concentrador[postgresql]' (psycopg 3 and psycopg-pool)"


def psycopg_missing() -> str | None:
    """Why the PostgreSQL ledger cannot be used here (None: it can)."""
    for module in ("psycopg", "psycopg_pool"):
        if importlib.util.find_spec(module) is None:
            return f"the PostgreSQL ledger needs the {module} module: {INSTALL_HINT}"
    return None


@functools.lru_cache(maxsize=2048)
def to_pyformat(sql: str) -> str:
    """``?`` -> ``%s`` and ``%`` -> ``%%``, except ``?`` inside '...' or "..." quotes."""
    out: list[str] = []
    quote = ""
    for char in sql:
        if quote:
            if char == quote:
                quote = ""  # a doubled '' closes then reopens: still right
        elif char in "'\"":
            quote = char
        elif char == "?":
            out.append("%s")
            continue
        out.append("%%" if char == "%" else char)
    if quote:
        raise ValueError(f"unterminated {quote} quote in SQL: {sql!r}")
    return "".join(out)


def describe_url(url: str) -> str:
    """``postgresql://user@host:port/db``: the URL for messages, without any password."""
    from psycopg.conninfo import conninfo_to_dict

    params = conninfo_to_dict(url)
    user = f"{params['user']}@" if params.get("user") else ""
    port = f":{params['port']}" if params.get("port") else ""
    return f"postgresql://{user}{params.get('host', '')}{port}/{params.get('dbname', '')}"


class PostgresConnection:
    """A psycopg connection as a :class:`~.backend.Connection` (``?`` placeholders)."""

    dialect: Dialect = POSTGRESQL

    def __init__(self, raw: psycopg.Connection[Any], trail: bool) -> None:
        self.raw = raw
        self.trail = trail

    def execute(self, sql: str, parameters: Sequence[Any] = (), /) -> psycopg.Cursor[Any]:
        # Always with a parameter sequence (maybe empty): psycopg then reads
        # every %% as %, which is how to_pyformat escaped the literal ones.
        return self.raw.execute(to_pyformat(sql), tuple(parameters))

    def executemany(self, sql: str, parameters: Iterable[Sequence[Any]], /) -> None:
        with self.raw.cursor() as cursor:
            cursor.executemany(to_pyformat(sql), parameters)


class PostgresDatabase:
    """The ledger in a PostgreSQL database shared by every replica."""

    dialect: Dialect = POSTGRESQL

    def __init__(
        self,
        url: str,
        *,
        timeout: float = 30.0,
        trail: bool = True,
        pool_size: int = DEFAULT_POOL_SIZE,
    ) -> None:
        missing = psycopg_missing()
        if missing is not None:
            raise LedgerError(missing)
        import psycopg
        from psycopg_pool import ConnectionPool

        self.trail = trail
        try:
            self.location = describe_url(url)
            # One plain connection first: an unreachable server or a refused
            # login is reported as PostgreSQL says it, not as a pool timeout.
            psycopg.connect(url, connect_timeout=max(1, round(timeout))).close()
        except psycopg.Error as exc:
            raise LedgerError(f"cannot open ledger {url_for_error(url)}: {exc}") from exc
        self._pool: ConnectionPool[psycopg.Connection[Any]] = ConnectionPool(
            url,
            min_size=1,
            max_size=pool_size,
            kwargs={"autocommit": True},
            timeout=timeout,
            # A connection the server dropped (restart, failover) is replaced,
            # not handed to a caller.
            check=ConnectionPool.check_connection,
            name="ledger",
            open=False,
        )
        self._pool.open(wait=True, timeout=timeout)

    def close(self) -> None:
        self._pool.close()

    @contextmanager
    def transaction(self, *, durable: bool = True) -> Iterator[Connection]:
        with self._pool.connection() as raw, raw.transaction():
            if not durable:
                raw.execute("SET LOCAL synchronous_commit = off")
            yield PostgresConnection(raw, self.trail)

    @contextmanager
    def read(self) -> Iterator[Connection]:
        with self._pool.connection() as raw:
            yield PostgresConnection(raw, self.trail)


def url_for_error(url: str) -> str:
    try:
        return describe_url(url)
    except Exception:  # an unparsable URL: say so without echoing a password
        return "(unparsable PostgreSQL URL)"

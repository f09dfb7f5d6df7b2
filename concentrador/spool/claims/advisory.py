"""Claims across replicas: PostgreSQL session advisory locks.

Each held claim is ``pg_try_advisory_lock(key)`` on a connection of its own,
kept out of the pool for as long as the claim is held; ``key`` is a stable
64-bit hash of (peer, kind) (:func:`claim_key`), the same in every replica
and every release. Releasing is ``pg_advisory_unlock(key)``. When a replica
dies (``kill -9``, a crashed host) its connections close and PostgreSQL drops
their locks with them: there is no lease to expire and nothing to clean up.
A host that vanishes without closing its TCP connections is noticed by the
server's TCP keepalives (``tcp_keepalives_idle`` etc., see ``docs/deploy.md``).

Why session locks on dedicated connections, not transaction locks or a
lease table: a cycle lasts minutes and talks to a remote peer; holding a
transaction open that long would pin the ledger's vacuum horizon, and a
lease needs a clock and a renewal loop. Why not the ledger's own pool: a
pooled connection is handed to the next caller after each statement, and
advisory locks belong to the session.

Advisory locks are per database, so two deployments on one server in two
databases never see each other's claims. Do not put a transaction-mode
connection pooler (PgBouncer) between the replicas and PostgreSQL: session
locks need the session.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
from collections.abc import Iterator
from typing import Any

from concentrador.spool.claims.base import Claim, ClaimBusy, check_kind
from concentrador.spool.claims.local import default_replica

__all__ = ["AdvisoryClaims", "ClaimsUnavailable", "claim_key"]

log = logging.getLogger(__name__)

# At most this many claims held at once by one replica (one connection each).
DEFAULT_MAX_CLAIMS = 32
# Give up getting a claim connection after this long (a job, not a wait for the claim).
CONNECT_TIMEOUT = 15.0

# Who holds a key, for the busy message (best effort: the holder may be gone already).
_HOLDER_SQL = (
    "SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid"
    " WHERE l.locktype = 'advisory' AND l.granted AND l.database = ("
    "SELECT oid FROM pg_database WHERE datname = current_database())"
    " AND l.classid = %s::bigint::oid AND l.objid = %s::bigint::oid AND l.objsubid = 1"
)


class ClaimsUnavailable(RuntimeError):
    """No connection to take a claim with: PostgreSQL is down, or too many claims at once."""


def claim_key(peer: str, kind: str) -> int:
    """The advisory lock key of (peer, kind): a signed 64-bit BLAKE2b digest.

    Stable across processes, versions and Python's hash seed (``hash()`` is
    not); the prefix keeps our keys apart from other users of the database.
    """
    digest = hashlib.blake2b(
        f"concentrador\0{peer}\0{check_kind(kind)}".encode(), digest_size=8
    ).digest()
    return int.from_bytes(digest, "big", signed=True)


class AdvisoryClaims:
    """:class:`~concentrador.spool.claims.base.Claims` by PostgreSQL advisory locks."""

    def __init__(
        self,
        url: str,
        *,
        replica: str | None = None,
        max_claims: int = DEFAULT_MAX_CLAIMS,
        timeout: float = CONNECT_TIMEOUT,
    ) -> None:
        # Imported here: psycopg is an optional extra, needed only with PostgreSQL.
        from psycopg_pool import ConnectionPool

        self._replica = replica or default_replica()
        self._timeout = timeout
        self._pool: ConnectionPool[Any] = ConnectionPool(
            url,
            min_size=0,  # a replica with no job running holds no connection
            max_size=max_claims,
            kwargs={
                "autocommit": True,
                # Shown in pg_stat_activity: who holds a claim (busy messages, operators).
                "application_name": f"concentrador claims {self._replica}"[:63],
                "connect_timeout": max(1, int(timeout)),
            },
            # A connection is never handed out with a lock left over from a
            # claim whose release failed half-way.
            reset=_unlock_all,
            check=ConnectionPool.check_connection,
            timeout=timeout,
            name="claims",
            open=True,
        )

    @property
    def replica(self) -> str:
        return self._replica

    @contextlib.contextmanager
    def hold(self, peer: str, kind: str) -> Iterator[Claim]:
        import psycopg
        from psycopg_pool import PoolTimeout

        key = claim_key(peer, kind)
        try:
            conn = self._pool.getconn()
        except PoolTimeout as exc:
            raise ClaimsUnavailable(
                f"{peer}: no PostgreSQL connection for a {kind} claim within "
                f"{self._timeout:g} s ({exc})"
            ) from None
        try:
            row = conn.execute("SELECT pg_try_advisory_lock(%s)", (key,)).fetchone()
            if row is None or not row[0]:
                raise ClaimBusy(peer, kind, _holder(conn, key))
        except BaseException:
            self._pool.putconn(conn)
            raise
        try:
            yield Claim(peer, kind, self._replica)
        finally:
            try:
                row = conn.execute("SELECT pg_advisory_unlock(%s)", (key,)).fetchone()
                if row is None or not row[0]:
                    # The session was reset under us: another replica may have
                    # run the same job meanwhile. Nothing to undo, but say so.
                    log.warning("%s: the %s claim was lost before its job ended", peer, kind)
            except psycopg.Error as exc:
                # The connection died: PostgreSQL dropped the lock with it.
                log.warning("%s: the %s claim's connection broke: %s", peer, kind, exc)
            finally:
                self._pool.putconn(conn)  # a broken one is discarded by the pool

    def close(self) -> None:
        self._pool.close()


def _unlock_all(conn: Any) -> None:
    conn.execute("SELECT pg_advisory_unlock_all()")


def _holder(conn: Any, key: int) -> str:
    high, low = (key >> 32) & 0xFFFFFFFF, key & 0xFFFFFFFF
    try:
        row = conn.execute(_HOLDER_SQL, (high, low)).fetchone()
    except Exception:  # a message detail only: never fail a busy report on it
        return ""
    name = str(row[0]) if row else ""
    prefix = "concentrador claims "
    return f" (by {name.removeprefix(prefix)})" if name.startswith(prefix) else ""

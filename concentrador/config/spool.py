"""``[spool]``: a spool folder shared by several replicas, or not (the default).

``shared = true`` says that every replica mounts this spool (NFS, CephFS;
``docs/deploy.md``, "Scale-out"). It changes three things: the watcher lists
the folders every ``poll_interval`` seconds (inotify never reports what
another host did), each replica writes its temp files in a ``.work/``
folder of its own (a restart clears only its own), and the ledger must be
PostgreSQL: SQLite's locking is not safe over a network file system, so a
shared spool with the embedded ledger is refused here, before any start.
"""

from __future__ import annotations

from typing import Any

from concentrador.config.checks import Checker
from concentrador.config.model import LedgerConfig, SpoolConfig

__all__ = ["SPOOL_KEYS", "read_spool"]

SPOOL_KEYS = ("shared", "poll_interval")
MAX_POLL_INTERVAL = 3600.0


def read_spool(checker: Checker, raw: object, ledger: LedgerConfig | None) -> SpoolConfig | None:
    """The ``[spool]`` table (absent: not shared); None after a problem.

    ``ledger`` is the already read ``[ledger]`` (None when it had a problem of
    its own: the cross-check is then left out rather than reported twice).
    """
    table: dict[str, Any] | None = checker.table(raw, "spool", SPOOL_KEYS)
    if table is None:
        return None
    default = SpoolConfig()
    shared = checker.boolean(table, "shared", "spool", default.shared)
    interval = checker.number(
        table, "poll_interval", "spool", default.poll_interval, minimum=0,
        maximum=MAX_POLL_INTERVAL,
    )  # fmt: skip
    if interval is not None and interval <= 0:
        checker.problem("spool.poll_interval", f"{interval} must be more than 0 seconds")
        return None
    if shared is None or interval is None:
        return None
    if not shared and "poll_interval" in table:
        checker.problem("spool.poll_interval", "only used with spool.shared = true")
        return None
    if shared and ledger is not None and ledger.url is None:
        checker.problem(
            "spool.shared",
            "a shared spool needs the ledger in PostgreSQL: set [ledger] url = "
            '"postgresql://..." (SQLite\'s locking is not safe over NFS or CephFS)',
        )
        return None
    return SpoolConfig(shared, float(interval))

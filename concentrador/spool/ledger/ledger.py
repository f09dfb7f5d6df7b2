"""The ledger: the little state that lives beside the spool folders.

The folders say *where* a file is; the ledger remembers what the folders
cannot: what was published to whom and when (for listing and expiry), which
received files still await confirmation, push retry state, which received
blocks arrived outside their peer's load window, small status facts, and the
audit trail of every file (``events.py``, written in the transaction of the
change), the 504 message codes and cursors (``codes.py``) and get answer
digests (``answers.py``). Two databases behind this one interface (``backend.py``): one SQLite file
(WAL, ``synchronous=FULL``; ``sqlite_db.py``), the default, or PostgreSQL
(``[ledger] url``; ``postgres_db.py``) for operators that run several
replicas. The SQL is plain and written once (``INSERT ... ON CONFLICT``, no
SQLite-only functions), timestamps are stored as fixed-width UTC ISO-8601
text so that string order is time order, and callers only see dataclasses.
Thread safe: SQLite shares one connection under a lock, PostgreSQL a pool.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from contextlib import AbstractContextManager
from datetime import datetime
from pathlib import Path

from concentrador.protocol import ListedFile
from concentrador.protocol.filetypes import TypeClassifier
from concentrador.spool.ledger import (
    codes,
    events,
    notes,
    outside_window,
    published,
    push,
    received,
    search,
)
from concentrador.spool.ledger.answers import AnswerDigestMethods
from concentrador.spool.ledger.backend import Connection, Database
from concentrador.spool.ledger.codes import CodedEntry
from concentrador.spool.ledger.cycles import CycleLogMethods
from concentrador.spool.ledger.deliveries import DeliveryMethods
from concentrador.spool.ledger.events import EventKind, FileEvent, Known, NewEvent
from concentrador.spool.ledger.notes import UnclassifiedEntry
from concentrador.spool.ledger.published import PublishedEntry
from concentrador.spool.ledger.push import PushState
from concentrador.spool.ledger.received import ReceivedBatchMethods, ReceivedEntry
from concentrador.spool.ledger.schema import LedgerError, apply_migrations, utc_now
from concentrador.spool.ledger.search import FilePage, FileQuery
from concentrador.spool.ledger.sqlite_db import SqliteDatabase

__all__ = ["Ledger"]  # the package re-exports the entries from their own modules


class Ledger(CycleLogMethods, AnswerDigestMethods, DeliveryMethods, ReceivedBatchMethods):
    """The spool's ledger. Open once per process; :meth:`close` at exit.

    ``Ledger(path)``: the SQLite file ``path``; ``Ledger(path, url="postgresql://...")``:
    that PostgreSQL database instead (``path`` is then unused). Either way the
    schema is created or migrated on open. The tables and migrations are in
    ``schema.py``; the SQL of each part in its module (``published``, ``codes``,
    ``received``, ``push``, ``outside_window``, ``notes``, ``events``,
    ``search``: functions over a connection, called from here).
    """

    def __init__(self, path: Path | str | None = None, *, url: str | None = None,
                 timeout: float = 30.0, trail: bool = True, pool_size: int | None = None,
                 classifier: TypeClassifier | None = None) -> None:  # fmt: skip
        # trail=False: no events, for bench/trail_cost_bench.py only (never a config key).
        self.trail = trail
        self.classifier = classifier or TypeClassifier()  # types received files
        self.path = Path(path) if path is not None else None
        self._db: Database
        try:
            if url is not None:
                from concentrador.spool.ledger import postgres_db as pg

                size = pool_size or pg.DEFAULT_POOL_SIZE
                self._db = pg.PostgresDatabase(url, timeout=timeout, trail=trail, pool_size=size)
            elif self.path is None:
                raise ValueError("a ledger needs a SQLite path or a PostgreSQL url")
            else:
                self._db = SqliteDatabase(self.path, timeout=timeout, trail=trail)
        except sqlite3.DatabaseError as exc:
            raise LedgerError(f"cannot open ledger {self.path}: {exc}") from exc
        try:
            self._migrate()
        except BaseException as exc:
            self._db.close()
            if isinstance(exc, sqlite3.DatabaseError):
                raise LedgerError(f"cannot open ledger {self.location}: {exc}") from exc
            raise

    @property
    def location(self) -> str:
        """Where the ledger is, for messages: its file, or its URL without password."""
        return self._db.location

    @property
    def dialect(self) -> str:
        return self._db.dialect

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- plumbing ------------------------------------------------------------
    def _transaction(self, *, durable: bool = True) -> AbstractContextManager[Connection]:
        return self._db.transaction(durable=durable)

    def _migrate(self) -> None:
        with self._transaction() as conn:
            apply_migrations(conn, self.location)

    def schema_version(self) -> int:
        with self._db.read() as conn:
            row = conn.execute("SELECT MAX(version) FROM schema_migrations").fetchone()
        return int(row[0] or 0)

    def check_writable(self) -> None:
        """Raise unless a write can commit now (``/readyz``): takes the write
        lock and runs a write that changes nothing, so nothing is recorded."""
        with self._transaction(durable=False) as conn:
            conn.execute("DELETE FROM kv WHERE 1 = 0")

    # -- publication ---------------------------------------------------------
    def record_published(
        self, entries: Iterable[PublishedEntry], *, history: Iterable[NewEvent] = ()
    ) -> None:
        """Record (or refresh) listed names, all in one transaction, with a
        ``published`` event per original after the ``history`` that led to it."""
        with self._transaction() as conn:
            published.upsert(conn, entries, history)

    def entries_for(self, peer: str, state: str = "published") -> list[PublishedEntry]:
        """Names of ``peer`` in ``state``, ordered by original then name."""
        with self._db.read() as conn:
            return published.select_entries(conn, peer, state=state)

    def listing(self, peer: str, state: str = "published") -> list[ListedFile]:
        """(name, file_type, size) of ``peer``'s names in ``state``: the fast path
        for informacionDisponible (no timestamp parsing per row)."""
        with self._db.read() as conn:
            return [ListedFile(*row) for row in published.select_listing(conn, peer, state)]

    def lookup(self, peer: str, name: str) -> PublishedEntry | None:
        with self._db.read() as conn:
            found = published.select_entries(conn, peer, name=name)
        return found[0] if found else None

    def entries_of(self, peer: str, original: str) -> list[PublishedEntry]:
        """Every listed name (the blocks, or the whole file) of one original."""
        with self._db.read() as conn:
            return published.select_entries(conn, peer, original=original)

    def set_state(
        self,
        peer: str,
        original: str,
        state: str,
        *,
        detail: str = "",
        actor: str | None = None,
        kind: EventKind | None = None,
    ) -> int:
        """Move every name of ``original`` to ``state``; returns rows changed.

        Writes the event ``kind`` (by default the one of ``state``: delivered,
        expired, failed, ...) with ``detail`` and ``actor``, when a row changed.
        """
        with self._transaction() as conn:
            return published.update_state(
                conn, peer, original, state, detail=detail, actor=actor, kind=kind
            )

    def set_states(self, peer: str, originals: list[str], state: str, detail: str = "") -> int:
        """:meth:`set_state` of several originals in one transaction: a group commit."""
        with self._transaction() as conn:
            return sum(
                published.update_state(conn, peer, o, state, detail=detail, actor=None, kind=None)
                for o in originals
            )

    def republish(self, peer: str, original: str, *, at: datetime, actor: str, reason: str) -> int:
        """An expired ``original`` is published again from ``at`` (a new window,
        listed anew); returns rows changed (0: it was not expired)."""
        with self._transaction() as conn:
            return published.reopen(conn, peer, original, at=at, actor=actor, reason=reason)

    def published_before(self, peer: str, cutoff: datetime) -> list[str]:
        """Originals still ``published`` whose publication is older than ``cutoff``."""
        with self._db.read() as conn:
            return published.select_originals_before(conn, peer, cutoff)

    # -- IEC 62325-504 message codes (SQL in codes.py) -------------------------
    def coded_entries(
        self,
        peer: str,
        *,
        after_code: int | None = None,
        start: datetime | None = None,
        end: datetime | None = None,
        file_type: str | None = None,
        limit: int | None = None,
    ) -> list[CodedEntry]:
        """``peer``'s published names ordered by code: codes > ``after_code``,
        ``start <= published_at < end``, of ``file_type``; at most ``limit``."""
        with self._db.read() as conn:
            return codes.select_entries(conn, peer, after_code=after_code, start=start,
                                        end=end, file_type=file_type, limit=limit)  # fmt: skip

    def coded_entry(
        self, peer: str, code: int, state: str | None = "published"
    ) -> CodedEntry | None:
        """``peer``'s name of this code, in ``state`` (None: any state), or None."""
        with self._db.read() as conn:
            return codes.select_by_code(conn, peer, code, state)

    def coded_entry_by_name(
        self, peer: str, name: str, state: str | None = "published"
    ) -> CodedEntry | None:
        with self._db.read() as conn:
            return codes.select_by_name(conn, peer, name, state)

    def iec_cursor(self, peer: str) -> int:
        """The last code of ``peer`` stored durably (we call its 504 list after it); 0: none."""
        with self._db.read() as conn:
            return codes.select_cursor(conn, peer)

    def set_iec_cursor(self, peer: str, code: int, *, rewind: bool = False) -> int:
        """Move ``peer``'s cursor to ``code`` (never back unless ``rewind``); the cursor after."""
        with self._transaction() as conn:
            return codes.advance_cursor(conn, peer, code, rewind=rewind)

    # -- outbox problems (SQL in notes.py) -------------------------------------
    def note_unclassified(self, peer: str, path: str, reason: str) -> None:
        """Remember why an outbox file is not published (keeps the first ``since``)."""
        with self._transaction() as conn:
            notes.upsert_unclassified(conn, peer, str(path), reason)

    def clear_unclassified(self, peer: str, path: str) -> None:
        with self._transaction() as conn:
            notes.delete_unclassified(conn, peer, str(path))

    def unclassified(self, peer: str) -> list[UnclassifiedEntry]:
        with self._db.read() as conn:
            return notes.select_unclassified(conn, peer)

    # -- received files (SQL in received.py) -----------------------------------
    def record_received(
        self,
        peer: str,
        name: str,
        md5: str,
        size: int,
        stored_path: str | Path,
        *,
        received_at: datetime | None = None,
        blocks: int | None = None,
        cursor: int | None = None,
    ) -> None:
        """Record a stored file (``blocks``: it was rebuilt from that many), with
        its type (by :attr:`classifier`) and events. A *different* file under the
        same name resets the confirmation (it is a new file); the same MD5 keeps it.
        ``cursor``: advance ``peer``'s 504 cursor to it (never back), in the same
        transaction, so a stored message is never fetched again and none is skipped."""
        file_type = self.classifier.classify(name)
        with self._transaction() as conn:
            received.upsert(conn, peer, name, md5, size, stored_path, received_at=received_at,
                            blocks=blocks, file_type=file_type)  # fmt: skip
            if cursor is not None:
                codes.advance_cursor(conn, peer, cursor)

    def received(self, peer: str, name: str) -> ReceivedEntry | None:
        with self._db.read() as conn:
            return received.select_received(conn, peer, name)

    def mark_confirmed(self, peer: str, *names: str, at: datetime | None = None) -> bool:
        """Note that we confirmed ``names`` to ``peer`` at once; False if any is unknown."""
        with self._transaction(durable=False) as conn:  # if lost: one more confirmation
            return all([received.mark_confirmed(conn, peer, n, at or utc_now()) for n in names])

    def unconfirmed(self, peer: str) -> list[ReceivedEntry]:
        """Stored files whose confirmation has not (yet) reached the peer."""
        with self._db.read() as conn:
            return received.select_unconfirmed(conn, peer)

    # -- small status facts ----------------------------------------------------
    def set_status(self, peer: str, key: str, value: str) -> None:
        with self._transaction() as conn:
            notes.upsert_status(conn, peer, key, str(value))

    def status(self, peer: str) -> dict[str, str]:
        with self._db.read() as conn:
            return notes.select_status(conn, peer)

    # -- push retry state (SQL in push.py) ---------------------------------------
    def push_state(self, peer: str, original: str) -> PushState | None:
        with self._db.read() as conn:
            return push.select_state(conn, peer, original)

    def record_push_attempt(
        self, peer: str, original: str, *, error: str | None, next_attempt_at: datetime | None
    ) -> PushState:
        """Count one more attempt (failed if ``error``), schedule the next one."""
        with self._transaction() as conn:
            state = push.record_attempt(
                conn, peer, original, error=error, next_attempt_at=next_attempt_at
            )
            events.insert_event(conn, peer, original, EventKind.PUSH_ATTEMPT, state.describe())
            return state

    def push_states(self, peer: str) -> list[PushState]:
        with self._db.read() as conn:
            return push.select_states(conn, peer)

    def clear_push_state(self, peer: str, original: str) -> None:
        with self._transaction() as conn:
            push.clear_state(conn, peer, original)

    # -- blocks received outside the load window (SQL in outside_window.py) ------
    def note_outside_window(self, peer: str, name: str) -> None:
        """Remember that block ``name`` was answered code 6: its set rebuilds into manual/.

        Written *before* the block is committed to ``partial/``, so no crash
        can leave the block there without its mark.
        """
        with self._transaction() as conn:
            outside_window.insert_mark(conn, peer, name)

    def marked_outside_window(self, peer: str, names: Iterable[str]) -> list[str]:
        """Those of the block ``names`` that arrived outside the load window (sorted)."""
        with self._db.read() as conn:
            return outside_window.select_marked(conn, peer, names)

    def clear_outside_window(self, peer: str, names: Iterable[str]) -> None:
        """Forget the marks of ``names`` (their set was rebuilt, failed or expired)."""
        with self._transaction() as conn:
            outside_window.delete_marks(conn, peer, names)

    # -- the audit trail (SQL in events.py) and the file search (search.py) ------
    def note_event(
        self,
        peer: str,
        name: str,
        kind: EventKind,
        detail: str = "",
        *,
        actor: str | None = None,
        durable: bool = True,
    ) -> None:
        """An event with no ledger state of its own (a block arrived, a rebuild
        failed, an operator reviewed a file); ``durable=False`` skips the fsync."""
        if self.trail:
            with self._transaction(durable=durable) as conn:
                events.insert_event(conn, peer, name, kind, detail, actor=actor)

    def note_listed(self, peer: str, remote: str | None) -> int:
        """``listed`` events for the files listed to ``peer`` for the first time."""
        if not self.trail or not self._has_unlisted(peer):
            return 0  # the usual case: no write lock taken for a listing
        with self._transaction(durable=False) as conn:
            return events.note_first_listing(conn, peer, remote)

    def _has_unlisted(self, peer: str) -> bool:
        with self._db.read() as conn:
            return events.has_unlisted(conn, peer)

    def note_fetched(self, peer: str, name: str, remote: str | None, known: Known = None) -> None:
        """``fetched`` event of ``name`` (a block or a file); ``known``: see events.note_fetch."""
        if self.trail:
            with self._transaction(durable=False) as conn:
                events.note_fetch(conn, peer, name, remote, known=known)

    def events_for(self, peer: str, name: str) -> list[FileEvent]:
        """The audit trail of one file (its whole name, not a block's), oldest first."""
        with self._db.read() as conn:
            return events.select_events(conn, peer, name)

    def search_files(
        self,
        *,
        peer: str | None = None,
        file_type: str | None = None,
        state: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        text: str | None = None,
        offset: int = 0,
        limit: int = 50,
    ) -> FilePage:
        """Sent and received files matching every given filter, newest first, one page."""
        query = FileQuery(peer, file_type, state, since, until, text, offset, limit)
        with self._db.read() as conn:
            return search.search(conn, query)

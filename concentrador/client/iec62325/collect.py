"""The collection cycle of a 504 peer: list after our cursor, get, verify, store.

"Confirmation" in IEC 62325-504 is the client's own cursor: the highest
message code of the peer that we stored durably (the ledger's ``iec_cursor``).
One cycle:

1. ``query serverTimestamp``: record the clock offset, warn above the
   threshold (as v2.3's peticionFechaHora);
2. ``list`` after the cursor;
3. for each entry, in code order: ``get`` it (the base64 streamed to
   ``.work/``), check its signature, decode it into an :class:`InboundWriter`
   (one pass), commit it durably, and record it in the ledger *with*
   ``cursor=code`` in the same transaction.

Exactly once across kill -9: before the commit nothing is stored and the
cursor has not moved, so the message is fetched again; after the ledger's
transaction the cursor is past it, so it is never fetched again. Only between
the commit's rename and that transaction is it fetched a second time, and the
store finds the identical file already in ``inbox/`` and keeps one copy.

What stops and what skips (the cursor never passes a message we could have
stored):

* a connection error or ``AuthenticationRefused`` ends the cycle;
* a fault, an unreadable answer or a refused signature: the ``get`` is tried
  again up to ``retries`` times, then the cycle stops *at that message*
  (cursor unmoved, the reason in the status fact ``iec_stuck``): the next
  cycle tries again, and an operator sees why. The cycle then ends with
  :class:`CollectionStopped` (a :class:`ClientError`: the runner records the
  cycle failed, ``concentrador collect`` exits non-zero), its summary saying
  "stopped at code N": not "skipped", which is for what the cursor passes
  over for good;
* ``GET-006`` (the message no longer exists), an entry of a type the peer's
  ``collect_types`` does not want, or a well-signed message whose content can
  never be stored (bad name, bad base64, too large, unknown format): logged,
  and the cursor moves past it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime

from concentrador.client.cycle import PeerCycle, utc_now
from concentrador.client.errors import (
    AuthenticationRefused,
    ClientError,
    FileVanished,
    PeerFaultError,
    PeerProtocolError,
)
from concentrador.client.iec62325.fetch import FetchedMessage, PayloadRefused
from concentrador.client.iec62325.session import Iec62325Session
from concentrador.client.progress import Progress
from concentrador.client.summary import CollectionSummary
from concentrador.config.model import PeerConfig
from concentrador.protocol import InvalidFileName, validate_peer_filename
from concentrador.protocol.iec62325.models import MessageListEntry
from concentrador.spool.inbound.store import InboundStore, InboundWriter
from concentrador.spool.layout import PeerSpool
from concentrador.spool.ledger import Ledger

__all__ = ["KV_STUCK", "CollectionStopped", "Iec62325Collector"]

log = logging.getLogger(__name__)

KV_STUCK = "iec_stuck"
"""Status fact: the message code a 504 collection stopped at, and why ("" when none)."""
ALL_TYPES = "TOD"


class CollectionStopped(ClientError):
    """The cycle stopped at a message it may not pass over; ``.summary`` has what it did."""

    def __init__(self, summary: CollectionSummary) -> None:
        super().__init__(
            summary.peer, f"collection stopped at {summary.stopped} ({summary.counts()})"
        )
        self.summary = summary


class Iec62325Collector(PeerCycle[Iec62325Session]):
    """Runs one collection cycle of one 504 peer."""

    def __init__(
        self,
        session: Iec62325Session,
        peer: PeerConfig,
        peer_spool: PeerSpool,
        ledger: Ledger,
        *,
        retries: int,
        clock_warn_seconds: float,
        now: Callable[[], datetime] = utc_now,
        progress: Progress | None = None,
        on_stored: Callable[[str], None] | None = None,
    ) -> None:
        super().__init__(
            session, peer, peer_spool, ledger, retries=retries, now=now, progress=progress
        )
        self.clock_warn_seconds = clock_warn_seconds
        # Test seam: runs after a message is stored and its cursor recorded.
        self.on_stored = on_stored
        self.store = InboundStore(peer_spool, ledger, decompress=peer.decompress)
        self.summary = CollectionSummary(peer.id)

    async def run(self) -> CollectionSummary:
        """One cycle; raises :class:`CollectionStopped` when it stops at a message."""
        await asyncio.to_thread(self.spool.ensure)
        await self.check_clock()
        cursor = await asyncio.to_thread(self.ledger.iec_cursor, self.peer_id)
        listed = await self.session.list_messages(cursor)
        entries = _after(listed, cursor)
        self.summary.listed = len(entries)
        self.progress.plan(len(entries), 0)  # a 504 list gives no sizes
        for entry in entries:
            if not await self._collect(entry):
                raise CollectionStopped(self.summary)
        await asyncio.to_thread(self.ledger.set_status, self.peer_id, KV_STUCK, "")
        return self.summary

    # -- clock ----------------------------------------------------------------------------
    async def check_clock(self) -> float | None:
        """``query serverTimestamp``; records and returns the offset (None if unavailable)."""
        return await self.check_peer_clock(
            self.session.server_time,
            lambda peer_time, sent, received: (
                peer_time - (sent + (received - sent) / 2)
            ).total_seconds(),
            self.clock_warn_seconds,
            self.summary,
        )

    # -- messages -------------------------------------------------------------------------
    def _wanted(self, entry: MessageListEntry) -> bool:
        types = self.peer.collect_types
        return ALL_TYPES in types or entry.type in types

    async def _collect(self, entry: MessageListEntry) -> bool:
        """Collect one entry; False when the cycle must stop here."""
        code = entry.code
        if not self._wanted(entry):
            log.info("%s: code %d is of type %s, not collected", self.peer_id, code, entry.type)
            await self._pass(code)
            return True
        for attempt in range(1, self.retries + 2):
            try:
                fetched = await self.session.get_message(
                    code, self.progress.advance, name_hint=entry.message_identification
                )
            except FileVanished as exc:
                log.info("%s: code %d vanished before we fetched it: %s", self.peer_id, code, exc)
                self.summary.vanished.append(entry.message_identification)
                await self._pass(code)
                return True
            except AuthenticationRefused:
                raise
            except PayloadRefused as exc:
                await self._refused(entry, str(exc))
                return True
            except (PeerFaultError, PeerProtocolError) as exc:
                log.warning(
                    "%s: get of code %d failed (attempt %d of %d): %s",
                    self.peer_id, code, attempt, self.retries + 1, exc,
                )  # fmt: skip
                if attempt > self.retries:
                    await self._stuck(entry, str(exc))
                    return False
                continue
            self.summary.fetched += 1
            try:
                stored = await asyncio.to_thread(self._store, fetched)
            except PayloadRefused as exc:
                await self._refused(entry, str(exc))
                return True
            finally:
                await asyncio.to_thread(fetched.discard)
            self.summary.bytes += stored
            self.summary.stored.append(fetched.name)
            self.summary.confirmed.append(fetched.name)  # the cursor is the confirmation
            self.progress.file_done(fetched.name, "stored")
            if self.on_stored is not None:
                self.on_stored(fetched.name)
            return True
        return False  # not reached: the last attempt returns

    def _store(self, fetched: FetchedMessage) -> int:
        """Decode, commit durably, record with the cursor: one worker-thread hop."""
        try:
            validate_peer_filename(fetched.name)
        except InvalidFileName as exc:
            raise PayloadRefused(self.peer_id, f"get code {fetched.code}: {exc}") from None
        # 504 has no blocks: a NAME.k_n name is just a name, stored whole.
        writer = InboundWriter(self.spool.work_dir, name=fetched.name, manual=False, block=None)
        try:
            size = fetched.decode_into(writer.write)
            self.store.commit(writer, fetched.name, cursor=fetched.code)
        finally:
            writer.abort()  # no-op once committed
        log.info(
            "%s: stored %s (code %d, %d bytes%s)",
            self.peer_id, fetched.name, fetched.code, size,
            f", signed by {fetched.signer}" if fetched.signer else "",
        )  # fmt: skip
        return size

    async def _pass(self, code: int) -> None:
        await asyncio.to_thread(self.ledger.set_iec_cursor, self.peer_id, code)

    async def _refused(self, entry: MessageListEntry, why: str) -> None:
        log.error("%s: code %d cannot be stored, passed over: %s", self.peer_id, entry.code, why)
        self.summary.skipped.append(entry.message_identification)
        await self._pass(entry.code)

    async def _stuck(self, entry: MessageListEntry, why: str) -> None:
        log.error(
            "%s: collection stops at code %d (%s) until it can be fetched: %s",
            self.peer_id, entry.code, entry.message_identification, why,
        )  # fmt: skip
        text = f"code {entry.code} ({entry.message_identification}): {' '.join(why.split())}"
        self.summary.stopped = text
        await asyncio.to_thread(self.ledger.set_status, self.peer_id, KV_STUCK, text)


def _after(entries: list[MessageListEntry], cursor: int) -> list[MessageListEntry]:
    """Entries above ``cursor``, one per code, in code order (whatever the peer sent)."""
    by_code: dict[int, MessageListEntry] = {}
    for entry in entries:
        if entry.code > cursor:
            by_code.setdefault(entry.code, entry)
    return [by_code[code] for code in sorted(by_code)]

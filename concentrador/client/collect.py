"""The collection cycle (CPCSCC.md §8): list, fetch and verify, store, confirm.

For one peer, over one :class:`~concentrador.client.session.PeerSession`:

1. peticionFechaHora: record the clock offset, warn above the threshold (§9);
2. informacionDisponible with the peer's ``collect_types``;
3. every whole file, and every block of every split file whose blocks are
   *all* listed, is fetched into a temp file while its MD5 is computed; it is
   committed (fsync + rename, through :class:`InboundStore`) only when the MD5
   matches the peer's checksum. A mismatch is fetched again, up to
   ``retries`` times, then confirmed with code 1 and recorded;
4. blocks go to ``partial/``; once a set's blocks are all there the collector
   asks for its rebuild and awaits it (an injected
   :data:`~concentrador.spool.inbound.rebuilds.RebuildSet`: the daemon's spool
   services, or a :class:`~concentrador.spool.inbound.rebuilds.LocalRebuilds`
   in a process without the daemon), then reads the outcome from the ledger
   and the folders: rebuilt, still waiting, or gone to ``failed/`` (confirmed
   with code 2);
5. each original file is confirmed once, with code 0, under its own name.

Pipelining (one connection, requests strictly one after the other): a whole
file's durable commit (fsync, rename, folder fsync, ledger row) runs in a
worker thread while the next file is fetched, and its confirmation goes out
right after that fetch (``connections = N``: N lanes, confirming at once).
Files verified while a commit runs are committed together in the next one
(:mod:`~concentrador.client.commits`: one folder fsync, one ledger
transaction). The disk work hides behind the network, and a file is still
confirmed only once it is durably stored and recorded. The ledger's
"confirmed" mark is likewise written in the background; it only saves a
re-confirmation, and every background write is awaited before the cycle
returns (or fails).

Idempotence comes from the ledger's ``received`` table. A listed name that
we already stored is confirmed again *without being fetched*: that is the
"died after storing, before confirming" case and the "confirmation lost,
file listed again" case alike. Blocks already in ``partial/`` were verified
when they were committed, so only the missing ones are fetched.

Errors: a connection error or ``Client.Autenticacion`` ends the cycle (the
caller records it); ``Client.Fichero`` while fetching means the file is gone
(logged, next file); other faults on one file are logged and the cycle goes on.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from datetime import datetime
from zoneinfo import ZoneInfo

from concentrador.client.commits import GroupCommits
from concentrador.client.cycle import (
    PeerCycle,
    clock_offset_seconds,
    in_lanes,
    utc_now,
)
from concentrador.client.download import PendingDownload
from concentrador.client.errors import (
    AuthenticationRefused,
    FileVanished,
    PeerFaultError,
    PeerProtocolError,
)
from concentrador.client.progress import Progress
from concentrador.client.session import PeerSession
from concentrador.client.summary import CollectionSummary
from concentrador.config.model import PeerConfig
from concentrador.protocol import (
    ConfirmationCode,
    InvalidFileName,
    group_listing,
    validate_peer_filename,
)
from concentrador.spool.inbound.rebuilds import LocalRebuilds, RebuildSet
from concentrador.spool.inbound.store import InboundStore
from concentrador.spool.layout import PeerSpool, Spool, SpoolState
from concentrador.spool.ledger import Ledger

__all__ = ["CollectionSummary", "Collector", "clock_offset_seconds"]

log = logging.getLogger(__name__)

KV_CHECKSUM_FAILURES = "checksum_failures"
KV_LAST_CHECKSUM_FAILURE = "last_checksum_failure"
MARK_BATCH = 64


class Collector(PeerCycle[PeerSession]):
    """Runs one collection cycle of one peer."""

    def __init__(
        self,
        session: PeerSession,
        peer: PeerConfig,
        peer_spool: PeerSpool,
        ledger: Ledger,
        *,
        retries: int,
        timezone: ZoneInfo,
        clock_warn_seconds: float,
        now: Callable[[], datetime] = utc_now,
        progress: Progress | None = None,
        on_stored: Callable[[str], None] | None = None,
        rebuild: RebuildSet | None = None,
    ) -> None:
        super().__init__(
            session, peer, peer_spool, ledger, retries=retries, now=now, progress=progress
        )
        self.timezone = timezone
        self.clock_warn_seconds = clock_warn_seconds
        # Test seam: runs after a file is stored durably, before it is
        # confirmed (a test raises here to play "killed between the two").
        self.on_stored = on_stored
        self.store = InboundStore(peer_spool, ledger, decompress=peer.decompress)
        self.commits = GroupCommits(self.store)
        # Who rebuilds a fetched block set; by default right here, in a worker thread.
        self.rebuild: RebuildSet = rebuild or LocalRebuilds(
            Spool(peer_spool.root, peer_spool.replica), ledger, {peer.id: peer}.get
        )
        self.summary = CollectionSummary(peer.id)
        # Whole files being committed in a worker thread, oldest first, each
        # confirmed once its commit is done (see the module docstring).
        self._storing: deque[tuple[str, asyncio.Future[None]]] = deque()
        self._background: set[asyncio.Future[object]] = set()
        self._marks: list[str] = []  # confirmed, not yet marked so in the ledger

    async def run(self) -> CollectionSummary:
        try:
            return await self._run()
        finally:
            await self._settle()

    async def _run(self) -> CollectionSummary:
        await asyncio.to_thread(self.spool.ensure)
        await self.check_clock()
        listing = await self.session.informacion_disponible(self.peer.collect_types)
        sizes = {datos.nombre: datos.longitud_kb for _, datos in listing.files()}
        grouped = group_listing(sizes)
        self.summary.listed = len(grouped.whole) + len(grouped.complete) + len(grouped.incomplete)
        self.progress.plan(
            len(grouped.whole) + len(grouped.complete),
            1024 * sum(sizes[n] for n in grouped.whole)
            + 1024 * sum(sizes[n] for names in grouped.complete.values() for n in names),
        )

        # One hop for the whole listing, not one per file (the store is idempotent
        # should a push store one of these meanwhile).
        stored = await asyncio.to_thread(self._received_among, grouped.whole)

        lanes = self.peer.connections
        # One lane: confirm each file right after the next fetch. N lanes: up to
        # N files wait for their commit while the lanes fetch on, so those verified
        # meanwhile are committed together (commits.py); the done ones are confirmed.
        keep, ready = (1, False) if lanes == 1 else (lanes, True)

        async def collect_whole(name: str) -> None:
            await self._collect_whole(name, already_stored=name in stored)
            await self._confirm_stored(keep=keep, ready=ready)

        await in_lanes(self.peer.connections, grouped.whole, collect_whole)
        await self._confirm_stored(keep=0)
        for original, block_names in grouped.complete.items():
            await self._collect_split(original, list(block_names))
        for original, incomplete in grouped.incomplete.items():
            log.info(
                "%s: %s has %d of %d blocks listed; waiting for the rest",
                self.peer_id, original, len(incomplete.present), incomplete.count,
            )  # fmt: skip
            self.summary.waiting.append(original)
        for original in grouped.inconsistent:
            log.warning(
                "%s: the listed blocks of %s disagree on the block count; not collected",
                self.peer_id, original,
            )  # fmt: skip
            self.summary.skipped.append(original)
        return self.summary

    # -- clock ----------------------------------------------------------------------------
    async def check_clock(self) -> float | None:
        """peticionFechaHora; records and returns the offset (None if unavailable)."""
        return await self.check_peer_clock(
            self.session.peticion_fecha_hora,
            lambda peer_time, sent, received: clock_offset_seconds(
                peer_time, sent, received, self.timezone
            ),
            self.clock_warn_seconds,
            self.summary,
        )

    # -- files ----------------------------------------------------------------------------
    def _unsafe(self, names: list[str]) -> bool:
        for name in names:
            try:
                validate_peer_filename(name)
            except InvalidFileName as exc:
                log.warning("%s: listed name refused, not collected: %s", self.peer_id, exc)
                self.summary.skipped.append(ascii(name[:80]))
                return True
        return False

    async def _already_stored(self, name: str) -> bool:
        return await asyncio.to_thread(self.ledger.received, self.peer_id, name) is not None

    def _received_among(self, names: Iterable[str]) -> set[str]:
        return {name for name in names if self.ledger.received(self.peer_id, name) is not None}

    async def _collect_whole(self, name: str, *, already_stored: bool) -> None:
        """Fetch and verify ``name``; its commit and confirmation follow in
        :meth:`_confirm_stored`."""
        if self._unsafe([name]):
            return
        if already_stored:
            await self._reconfirm(name)
            return
        result = await self._fetch_verified(name, in_background=True)
        if result == "checksum":
            await self._checksum_failed(name)

    async def _confirm_stored(self, *, keep: int, ready: bool = False) -> None:
        """Confirm the files being committed, oldest first, but the last ``keep``
        (and, with ``ready``, any whose commit is already done).

        Awaiting the commit first keeps the rule: confirmed only once stored.
        A storage error surfaces here and ends the cycle, as it always did.
        """
        while self._storing:
            if len(self._storing) <= keep and not (ready and self._storing[0][1].done()):
                return
            name, commit = self._storing.popleft()
            await commit
            await self._stored(name)

    async def _settle(self) -> None:
        """Wait for every background commit and ledger write (nothing is confirmed)."""
        self._mark_confirmed()
        pending = [commit for _, commit in self._storing] + list(self._background)
        self._storing.clear()
        logged: set[int] = set()  # a group's files share one error: logged once
        for future in pending:
            # The cycle is ending anyway (maybe on that very error, already
            # raised by _confirm_stored): finish the disk work, log the rest.
            with contextlib.suppress(asyncio.CancelledError):
                try:
                    await future
                except Exception as exc:
                    if id(exc) not in logged:
                        logged.add(id(exc))
                        log.exception("%s: a background store or ledger write failed", self.peer_id)

    def _later(self, work: Awaitable[object]) -> None:
        future = asyncio.ensure_future(work)
        self._background.add(future)
        future.add_done_callback(self._background.discard)

    def _mark_confirmed(self) -> None:
        names, self._marks = self._marks, []
        if names:
            mark = self.ledger.mark_confirmed
            self._later(asyncio.to_thread(mark, self.peer_id, *names, at=self.now()))

    def _commit(self, download: PendingDownload, name: str) -> None:
        """A block: write what is held, commit, in a worker thread; the temp goes on failure."""
        try:
            self.store.commit(download.finish(), name)
        finally:
            download.abort()  # no-op once committed

    async def _collect_split(self, original: str, block_names: list[str]) -> None:
        if self._unsafe([original, *block_names]):
            return
        if await self._already_stored(original):
            await self._reconfirm(original)
            return
        partial = self.spool.dir(SpoolState.PARTIAL)
        for name in block_names:
            if await asyncio.to_thread((partial / name).is_file):
                continue  # verified when it was committed (by us or a push)
            result = await self._fetch_verified(name)
            if result == "checksum":
                await self._checksum_failed(original)
                return
            if result != "stored":
                return  # vanished or failed: the rest of the set waits
        if not await self._already_stored(original):
            # Also rebuilds a set that was complete before this cycle (its
            # rebuild failed or was cut short): the blocks were all there.
            await self.rebuild(self.peer_id, original)
        if await self._already_stored(original):
            await self._stored(original)
            return
        if any([await asyncio.to_thread((partial / n).is_file) for n in block_names]):
            log.warning("%s: %s not rebuilt yet; will retry", self.peer_id, original)
            self.summary.waiting.append(original)
            return
        # The reassembler moved the set to failed/ (not one bzip2 stream).
        log.error(
            "%s: %s does not rebuild from its blocks; confirming code 2", self.peer_id, original
        )
        self.summary.skipped.append(original)
        await self._confirm(original, ConfirmationCode.GENERIC_ERROR)

    async def _fetch_verified(self, name: str, *, in_background: bool = False) -> str:
        """``stored``, ``checksum`` (still wrong after the retries), ``vanished`` or ``failed``.

        Each attempt downloads into a fresh :class:`PendingDownload`. With
        ``in_background`` a verified file's commit is queued for
        :meth:`_confirm_stored` instead of awaited.
        """
        for attempt in range(1, self.retries + 2):
            writer = PendingDownload(lambda: self.store.open(name, manual=False))
            handed_over = False
            try:
                try:
                    fichero, size = await self.session.recoger_fichero(
                        name, writer, self.progress.advance
                    )
                except FileVanished as exc:
                    log.info("%s: %s vanished before we fetched it: %s", self.peer_id, name, exc)
                    self.summary.vanished.append(name)
                    return "vanished"
                except AuthenticationRefused:
                    raise
                except (PeerFaultError, PeerProtocolError) as exc:
                    log.warning("%s: fetching %s failed: %s", self.peer_id, name, exc)
                    self.summary.skipped.append(name)
                    return "failed"
                self.summary.fetched += 1
                self.summary.bytes += size
                if fichero.matches(writer.md5):
                    handed_over = True
                    if in_background:
                        self._storing.append((name, self.commits.submit(writer, name)))
                        return "stored"
                    await asyncio.to_thread(self._commit, writer, name)
                    return "stored"
                log.warning(
                    "%s: %s: MD5 mismatch (peer says %s, got %s), attempt %d of %d",
                    self.peer_id, name, fichero.checksum, writer.md5, attempt, self.retries + 1,
                )  # fmt: skip
            finally:
                if not handed_over and writer.writer is not None:
                    await asyncio.to_thread(writer.abort)
        return "checksum"

    # -- confirmations ------------------------------------------------------------------------
    async def _stored(self, name: str) -> None:
        self.summary.stored.append(name)
        self.progress.file_done(name, "stored")
        if self.on_stored is not None:
            self.on_stored(name)
        if await self._confirm(name, ConfirmationCode.RECEIVED):
            self.summary.confirmed.append(name)

    async def _reconfirm(self, name: str) -> None:
        log.info("%s: %s is already stored; confirming it again", self.peer_id, name)
        if await self._confirm(name, ConfirmationCode.RECEIVED):
            self.summary.reconfirmed.append(name)

    async def _checksum_failed(self, name: str) -> None:
        log.error(
            "%s: %s: MD5 still wrong after %d attempt(s); confirming code 1",
            self.peer_id, name, self.retries + 1,
        )  # fmt: skip
        self.summary.checksum_failed.append(name)
        await asyncio.to_thread(self._record_checksum_failure, name)
        await self._confirm(name, ConfirmationCode.CHECKSUM_FAILED)

    def _record_checksum_failure(self, name: str) -> None:
        count = int(self.ledger.status(self.peer_id).get(KV_CHECKSUM_FAILURES, "0") or 0)
        self.ledger.set_status(self.peer_id, KV_CHECKSUM_FAILURES, str(count + 1))
        when = self.now().isoformat(timespec="seconds")
        self.ledger.set_status(self.peer_id, KV_LAST_CHECKSUM_FAILURE, f"{name} at {when}")

    async def _confirm(self, name: str, code: int) -> bool:
        """Send the confirmation; True when the peer accepted it (codigo 0)."""
        try:
            accepted = await self.session.confirmacion(name, code)
        except AuthenticationRefused:
            raise
        except (PeerFaultError, PeerProtocolError) as exc:
            log.warning("%s: confirming %s (code %d) failed: %s", self.peer_id, name, code, exc)
            accepted = False
        if code != ConfirmationCode.RECEIVED:
            return accepted
        if accepted:
            # In the background and in batches (one thread hop and transaction
            # for MARK_BATCH files): losing marks costs re-confirmations, nothing more.
            self._marks.append(name)
            if len(self._marks) >= MARK_BATCH:
                self._mark_confirmed()
            return True
        log.warning("%s: %s not confirmed by the peer; will confirm again", self.peer_id, name)
        self.summary.not_confirmed.append(name)
        return False

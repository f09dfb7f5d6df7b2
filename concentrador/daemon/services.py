"""The spool side of the running daemon: publishers, reassembly, expiry.

:class:`SpoolServices` owns the objects that act on the spool for every
configured peer and runs their blocking work off the event loop through
:class:`~concentrador.daemon.jobs.CoalescingRunner` (one publish pass and one
reassembly pass per peer at a time, bursts coalesced). Watcher callbacks
arrive on watchdog's thread and are hopped onto the loop with
``call_soon_threadsafe`` before anything else happens.

It is the one scheduler of block-set rebuilds in the daemon: the watcher
(:meth:`SpoolServices.on_partial`), the periodic sweep
(:meth:`SpoolServices.request_reassembly_all`), the server after a stored
block and the collector before it confirms a set (both through
:meth:`SpoolServices.rebuild`, a
:data:`~concentrador.spool.inbound.rebuilds.RebuildSet` the daemon injects)
all land in the same per-peer reassembly pass. Every set asked for between
two passes is tried by the next one (a sweep, if one was asked for, covers
them all), and :meth:`SpoolServices.rebuild` returns once that pass ran.

Every pass runs under its peer's claim (:mod:`concentrador.spool.claims`:
``publish``, ``rebuild``, ``expiry``), so with several replicas on one spool a
peer's pass runs on one replica at a time; a pass whose claim is held
elsewhere is skipped, and for publish and rebuild asked again shortly (the
holder may have scanned before the file that triggered us arrived).

On SIGHUP, :meth:`SpoolServices.apply_config` swaps in per-peer objects built
from the new config; a pass already running finishes with the old ones.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from concentrador.config.model import Config, PeerConfig
from concentrador.daemon.jobs import CoalescingRunner
from concentrador.protocol import parse_block_name
from concentrador.spool.claims import ClaimBusy, Claims, open_claims
from concentrador.spool.inbound.reassembly import Reassembler
from concentrador.spool.layout import is_temp_name
from concentrador.spool.ledger import Ledger
from concentrador.spool.outbound.answer_digests import warm_answer_digests
from concentrador.spool.outbound.compress import Compressor, describe, detect_compressor
from concentrador.spool.outbound.expiry import expire_published
from concentrador.spool.outbound.publisher import Publisher, RecoveryReport
from concentrador.spool.workdirs import keep_work_tidy, spool_for

__all__ = ["SpoolServices"]

log = logging.getLogger(__name__)

# Worker threads for spool passes. Each publish pass fans out over all cores
# by itself (the compressor's pool), so more than a few passes at once would
# only make them compete; the bound keeps a burst over many peers in check.
SPOOL_WORKERS = 4

# A pass whose claim another replica holds is asked again after this long.
BUSY_RETRY_SECONDS = 2.0

# What a peer's next reassembly pass must try: original → the callers awaiting
# it; the key None asks for a sweep of the whole partial/ folder.
_Wanted = dict[str | None, list[asyncio.Future[None]]]


@dataclass
class _PeerObjects:
    config: PeerConfig
    publisher: Publisher
    reassembler: Reassembler


class SpoolServices:
    """Publishing, reassembly and expiry for every configured peer."""

    def __init__(
        self,
        config: Config,
        *,
        settle_seconds: float = 2.0,
        compressor: Compressor | None = None,
        trail: bool = True,
        claims: Claims | None = None,
    ) -> None:
        self.config = config
        self.settle_seconds = settle_seconds
        self.spool = spool_for(config)  # its own temp folders on a shared spool
        self.spool.ensure([p.id for p in config.peers])
        self.classifier = config.type_classifier()
        self.ledger = Ledger(
            self.spool.ledger_path, url=config.ledger.url, pool_size=config.ledger.pool_size,
            trail=trail, classifier=self.classifier,
        )  # fmt: skip
        # One per process, shared with the client runner (serve.py): a claim
        # per (peer, job kind), recorded in the ledger's cycle log.
        self.claims = claims or open_claims(
            self.spool, config.ledger.url, cycle_log=self.ledger, replica=config.node.replica
        )
        self.compressor = compressor or detect_compressor()
        log.info("compressor: %s", describe(self.compressor))
        self.executor = ThreadPoolExecutor(SPOOL_WORKERS, thread_name_prefix="spool")
        # Called from a worker thread after a pass published something (the
        # daemon hops onto the loop to start a push cycle for push peers).
        self.on_published: Callable[[str, int], None] | None = None
        self._publish_runner = CoalescingRunner(self.executor, name="outbox publish pass")
        self._reassembly_runner = CoalescingRunner(self.executor, name="reassembly pass")
        # Filled on the loop, emptied by the pass in a worker thread.
        self._wanted: dict[str, _Wanted] = {}
        self._wanted_lock = threading.Lock()
        self._draining = False
        self._peers: dict[str, _PeerObjects] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._build_peers(config)

    # -- configuration -------------------------------------------------------------
    def _build_peers(self, config: Config) -> None:
        peers = {}
        for peer in config.peers:
            peer_spool = self.spool.peer(peer.id).ensure()
            publisher = Publisher(
                peer_spool,
                self.ledger,
                classifier=self.classifier,
                block_size=config.node.block_size,
                deliver=peer.deliver,
                compressor=self.compressor,
                settle_seconds=self.settle_seconds,
            )
            reassembler = Reassembler(peer_spool, self.ledger, decompress=peer.decompress)
            peers[peer.id] = _PeerObjects(peer, publisher, reassembler)
        self._peers = peers

    def apply_config(self, config: Config) -> None:
        """Use ``config`` from now on (the spool root never changes while running)."""
        self.config = config
        self.classifier = self.ledger.classifier = config.type_classifier()
        self._build_peers(config)

    @property
    def peer_ids(self) -> list[str]:
        return list(self._peers)

    # -- start-up (blocking; run before the server listens) -------------------------
    def startup_pass(self) -> None:
        """Crash recovery and one round of every job, in the documented order.

        Publisher recovery runs before ``clear_work``: it must see the staging
        folders a crash left in ``.work/`` to finish or undo them.
        """
        for peer_id, objects in self._peers.items():
            peer_spool = self.spool.peer(peer_id)
            try:
                with self.claims.hold(peer_id, "publish"):
                    _log_recovery(peer_id, objects.publisher.recover())
            except ClaimBusy:
                # A live replica is publishing: its staging is not a crash's.
                log.info("%s: publishing runs elsewhere; its recovery is left to it", peer_id)
                if peer_spool.replica is None:
                    continue  # one host: .work/ may hold that publisher's temp files
            # On a shared spool: only this replica's own folder (spool/workdirs.py).
            removed = peer_spool.clear_work()
            if removed:
                log.info("%s: cleared %d leftover temp file(s) in .work/", peer_id, removed)
            keep_work_tidy(peer_spool)
        for peer_id in self._peers:
            self.publish_pass(peer_id)
        for peer_id, objects in self._peers.items():
            with contextlib.suppress(ClaimBusy), self.claims.hold(peer_id, "rebuild"):
                objects.reassembler.sweep()
        self.expiry_pass()

    # -- the passes (blocking; called in the executor) ---------------------------------
    def publish_pass(self, peer_id: str) -> None:
        objects = self._peers.get(peer_id)
        if objects is None:
            return
        try:
            with self.claims.hold(peer_id, "publish"):
                # Under the claim no other pass runs anywhere, so any staging
                # left in .work/ is a dead holder's (another replica killed
                # mid-pass): finish or undo it before going on.
                _log_recovery(peer_id, objects.publisher.recover())
                results = objects.publisher.publish_pending()
                warm_answer_digests(self.config, self.ledger, self.spool.peer(peer_id), results)
        except ClaimBusy:
            self._hop(self._publish_runner.request_later, peer_id, BUSY_RETRY_SECONDS,
                      lambda: self.publish_pass(peer_id))  # fmt: skip
            return
        if results and self.on_published is not None:
            self.on_published(peer_id, len(results))

    def reassembly_pass(self, peer_id: str) -> None:
        """Try every set asked for ``peer_id`` since the last pass, then wake their callers."""
        with self._wanted_lock:
            wanted = self._wanted.pop(peer_id, {})
        try:
            objects = self._peers.get(peer_id)
            if objects is None:
                return
            try:
                with self.claims.hold(peer_id, "rebuild"):
                    self._rebuild(peer_id, objects.reassembler, wanted)
            except ClaimBusy:
                # Rebuilding elsewhere, maybe from a scan older than our blocks:
                # ask again once it is done; the callers keep waiting.
                self._requeue(peer_id, wanted)
                wanted = {}
        finally:
            self._wake(wanted)

    @staticmethod
    def _rebuild(peer_id: str, reassembler: Reassembler, wanted: _Wanted) -> None:
        if None in wanted:
            reassembler.sweep()  # logs and skips a set that fails
            return
        for original in sorted(o for o in wanted if o is not None):
            try:
                reassembler.try_complete(original)
            except Exception:
                # One set must not stop the others; the next sweep retries it.
                log.exception("%s: rebuilding %s failed", peer_id, original)

    def _requeue(self, peer_id: str, wanted: _Wanted) -> None:
        """Put ``wanted`` back for a pass in :data:`BUSY_RETRY_SECONDS` (worker thread)."""
        with self._wanted_lock:
            mine = self._wanted.setdefault(peer_id, {})
            for original, waiters in wanted.items():
                mine.setdefault(original, []).extend(waiters)
        self._hop(self._reassembly_runner.request_later, peer_id, BUSY_RETRY_SECONDS,
                  lambda: self.reassembly_pass(peer_id))  # fmt: skip

    def _wake(self, wanted: _Wanted) -> None:
        """Resolve the futures of ``wanted`` on the loop (called from a worker thread)."""
        waiters = [waiter for waiters in wanted.values() for waiter in waiters]
        loop = self._loop
        if waiters and loop is not None and not loop.is_closed():
            # RuntimeError: the loop closed between the check and the call (stopping).
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(_resolve, waiters)

    def expiry_pass(self) -> None:
        now = datetime.now(UTC)
        window = timedelta(days=self.config.node.publish_days)
        for peer_id, objects in list(self._peers.items()):
            keep_work_tidy(self.spool.peer(peer_id))  # shared spool: temp folders
            try:
                with self.claims.hold(peer_id, "expiry"):
                    self._expire(peer_id, objects.reassembler, now, window)
            except ClaimBusy:
                log.debug("%s: expiry runs elsewhere", peer_id)
            except Exception:
                # One peer's broken folder must not stop the others' expiry.
                log.exception("%s: expiry pass failed; other peers go on", peer_id)
        try:
            self.ledger.prune_cycles(now - window)  # the cycle log keeps one window
        except Exception:
            log.exception("pruning the cycle log failed")

    def _expire(
        self, peer_id: str, reassembler: Reassembler, now: datetime, window: timedelta
    ) -> None:
        try:
            # partial/ is the rebuild claim's: a set being rebuilt elsewhere
            # must not be escalated as incomplete under it.
            with self.claims.hold(peer_id, "rebuild"):
                # Reassembly first: an old set that is complete must be rebuilt,
                # not escalated because its blocks happen to be old.
                reassembler.sweep()
                # Both log each set/file they move.
                reassembler.expire_incomplete(now=now, max_age=window)
        except ClaimBusy:
            log.debug("%s: rebuilding elsewhere; incomplete sets are expired next time", peer_id)
        expire_published(
            self.spool.peer(peer_id),
            self.ledger,
            now=now,
            publish_days=self.config.node.publish_days,
        )

    # -- triggers (event loop) ----------------------------------------------------------
    def bind_loop(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop

    def request_publish(self, peer_id: str) -> None:
        """Ask for a publish pass of ``peer_id`` (coalesced)."""
        if peer_id in self._peers:
            self._publish_runner.request(peer_id, lambda: self.publish_pass(peer_id))

    def request_publish_all(self) -> None:
        for peer_id in self.peer_ids:
            self.request_publish(peer_id)

    def request_publish_when_settled_all(self) -> None:
        """As if every outbox had just changed: files the start-up pass skipped
        as not yet settled are published once they could be, not at the next
        sweep."""
        for peer_id in self.peer_ids:
            self._outbox_event(peer_id)

    def request_reassembly(self, peer_id: str, original: str | None = None) -> None:
        """Ask for a rebuild of ``original`` (None: a sweep of ``partial/``); returns at once."""
        self._want(peer_id, original, None)

    async def rebuild(self, peer_id: str, original: str) -> None:
        """The daemon's :data:`~concentrador.spool.inbound.rebuilds.RebuildSet`.

        Returns once a reassembly pass that started after this call has tried
        ``original`` (or at once for an unknown peer or a stopping daemon).
        Never raises for a failed rebuild: the pass logs it.
        """
        if peer_id not in self._peers or self._draining:
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._want(peer_id, original, waiter)
        await waiter

    def _want(
        self, peer_id: str, original: str | None, waiter: asyncio.Future[None] | None
    ) -> None:
        if peer_id not in self._peers:
            return
        with self._wanted_lock:
            waiters = self._wanted.setdefault(peer_id, {}).setdefault(original, [])
            if waiter is not None:
                waiters.append(waiter)
        # Keyed per peer, not per set: the reassembler takes the peer lock
        # anyway, and one pass tries every set asked for meanwhile.
        self._reassembly_runner.request(peer_id, lambda: self.reassembly_pass(peer_id))

    def request_reassembly_all(self) -> None:
        for peer_id in self.peer_ids:
            self.request_reassembly(peer_id)

    def _outbox_event(self, peer_id: str) -> None:
        self.request_publish(peer_id)
        # A file seen for the first time is not settled yet (the publisher
        # waits until it stops changing); look again once it could be. A
        # later event for the same peer pushes this look further out.
        self._publish_runner.request_later(
            peer_id, self.settle_seconds + 0.25, lambda: self.publish_pass(peer_id)
        )

    def _partial_event(self, peer_id: str, path: Path) -> None:
        block = parse_block_name(path.name)
        if block is not None:
            self.request_reassembly(peer_id, block.original)

    # -- watcher callbacks (watchdog's thread) ----------------------------------------
    def on_outbox(self, peer_id: str, path: Path) -> None:
        self._hop(self._outbox_event, peer_id)

    def on_partial(self, peer_id: str, path: Path) -> None:
        if not is_temp_name(Path(path).name):
            self._hop(self._partial_event, peer_id, Path(path))

    def _hop(self, callback: object, *args: object) -> None:
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        # RuntimeError: the loop closed between the check and the call (stopping).
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(callback, *args)  # type: ignore[arg-type]

    # -- shutdown ---------------------------------------------------------------------
    async def drain(self) -> None:
        """Stop taking work and wait for the passes that run."""
        self._draining = True
        await self._publish_runner.close()
        await self._reassembly_runner.close()
        # Requests the closed runner dropped: wake their callers (the sets
        # stay in partial/ for the start-up sweep).
        with self._wanted_lock:
            dropped, self._wanted = self._wanted, {}
        for wanted in dropped.values():
            _resolve([waiter for waiters in wanted.values() for waiter in waiters])

    def close(self) -> None:
        """Join the worker threads, stop the compressor, close the ledger."""
        self.executor.shutdown(wait=True, cancel_futures=True)
        self.compressor.close()
        self.claims.close()
        self.ledger.close()


def _log_recovery(peer_id: str, report: RecoveryReport) -> None:
    if report.rolled_back or report.completed:
        log.info("%s: recovered interrupted publications (%d completed, %d rolled back)",
                 peer_id, report.completed, report.rolled_back)  # fmt: skip


def _resolve(waiters: list[asyncio.Future[None]]) -> None:
    for waiter in waiters:
        if not waiter.done():  # a caller that gave up cancelled its own
            waiter.set_result(None)

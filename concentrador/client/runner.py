"""One cycle of one peer at a time, with its lock, session and status facts.

Both the daemon's schedule and the one-shot CLI commands go through
:class:`ClientRunner`, so they lock the same way and record the same status
facts in the ledger's kv table (shown by ``concentrador status``):

* ``last_cycle_at`` / ``last_cycle_result``: the last collection cycle;
* ``last_push_at`` / ``last_push_result``: the last push cycle;
* ``clock_offset_seconds`` (written by the collector);
* ``last_cycle_ok_at`` / ``last_push_ok_at``: the last one that succeeded, and
  ``cycle_failures_in_a_row`` / ``push_failures_in_a_row`` (the console warns
  about a peer whose last cycles all failed);
* ``push_failed_count``, ``checksum_failures``;
* ``authentication_refused``: set, loudly, when the peer answered
  ``Client.Autenticacion``; the daemon then stops that peer's cycles until
  the configuration is reloaded (it needs an administrator, §4.5).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from concentrador.client.collect import CollectionSummary, Collector
from concentrador.client.cycle import utc_now
from concentrador.client.errors import AuthenticationRefused, ClientError
from concentrador.client.iec62325 import Iec62325Collector, Iec62325Pusher, Iec62325Session
from concentrador.client.locks import busy
from concentrador.client.progress import Progress
from concentrador.client.push import PushCycle, Pusher, PushSummary
from concentrador.client.session import PeerSession
from concentrador.config.model import Config, PeerConfig
from concentrador.spool.claims import Claim, Claims, hold_async, open_claims
from concentrador.spool.inbound.rebuilds import LocalRebuilds, RebuildSet
from concentrador.spool.layout import PeerSpool
from concentrador.spool.ledger import Ledger
from concentrador.spool.workdirs import spool_for
from concentrador.telemetry.metrics import CYCLE_SECONDS

__all__ = ["ClientRunner", "NotCallable"]

log = logging.getLogger(__name__)

KV_AUTH_REFUSED = "authentication_refused"


class NotCallable(ClientError):
    """The peer is not configured for this kind of cycle (no url, not push...)."""


class ClientRunner:
    """Runs collection and push cycles for the peers of one config."""

    def __init__(
        self,
        config: Config,
        ledger: Ledger,
        *,
        now: Callable[[], datetime] = utc_now,
        session_factory: Callable[[Config, PeerConfig], PeerSession] = PeerSession.open,
        collector_options: dict[str, Any] | None = None,
        rebuild: RebuildSet | None = None,
        claims: Claims | None = None,
        iec_session_factory: Callable[
            [Config, PeerConfig, Path], Iec62325Session
        ] = Iec62325Session.open,
    ) -> None:
        self.config = config
        self.ledger = ledger
        self.now = now
        self.session_factory = session_factory
        # IEC 62325-504 peers (peer.protocol): their own session and cycles.
        self.iec_session_factory = iec_session_factory
        self.collector_options = collector_options or {}
        # Who rebuilds a collected block set (see Collector); None: the collector's own.
        self.rebuild = rebuild
        # One holder per (peer, cycle) across processes and replicas; the
        # daemon passes its own (one per process). The default matches the
        # ledger (lock files in the spool for SQLite), recorded in its cycle log.
        self.claims = claims or open_claims(
            spool_for(config), config.ledger.url, cycle_log=ledger, replica=config.node.replica
        )
        self.blocked: dict[str, str] = {}
        """Peers whose scheduled cycles are stopped (Client.Autenticacion) → why."""

    def apply_config(self, config: Config) -> None:
        """A (re)loaded config: its peers may be called again."""
        self.config = config
        for peer_id in list(self.blocked):
            log.info("%s: configuration reloaded; calling the peer again", peer_id)
            self.ledger.set_status(peer_id, KV_AUTH_REFUSED, "")
        self.blocked.clear()

    def _peer(self, peer_id: str, *, push: bool) -> tuple[PeerConfig, PeerSpool]:
        peer = self.config.peer_by_id(peer_id)
        if peer is None:
            raise NotCallable(peer_id, "not a configured peer")
        if not peer.url:
            raise NotCallable(peer_id, "has no url: we never call it")
        if push and peer.deliver != "push":
            raise NotCallable(peer_id, f'deliver = "{peer.deliver}": files wait to be collected')
        # Its own temp folder on a shared spool (spool/workdirs.py).
        return peer, spool_for(self.config).peer(peer_id)

    def _client_settings(self) -> tuple[int, float]:
        client = self.config.client
        if client is None:
            raise NotCallable("-", "calling peers needs a [client] section")
        return client.retries, client.retry_delay

    async def collect(self, peer_id: str, *, progress: Progress | None = None) -> CollectionSummary:
        """One collection cycle now; raises :class:`ClientError` (e.g. :class:`CycleBusy`)."""
        peer, peer_spool = self._peer(peer_id, push=False)
        retries, _ = self._client_settings()

        def collector(session: Any) -> Collector | Iec62325Collector:
            options: dict[str, Any] = {
                "retries": retries,
                "clock_warn_seconds": self.config.node.clock_warn_seconds,
                "now": self.now,
                "progress": progress,
                **self.collector_options,
            }
            if peer.iec62325:
                return Iec62325Collector(session, peer, peer_spool, self.ledger, **options)
            return Collector(
                session,
                peer,
                peer_spool,
                self.ledger,
                timezone=self.config.node.timezone,
                # Without the daemon's: here, under the rebuild claim (across replicas).
                rebuild=self.rebuild
                or LocalRebuilds(
                    spool_for(self.config), self.ledger, self.config.peer_by_id, claims=self.claims
                ),
                **options,
            )

        return await self._cycle(peer, peer_spool, "collect", "cycle", collector)

    async def push(self, peer_id: str, *, progress: Progress | None = None) -> PushSummary:
        """One push cycle now (what is in ``sending/`` and due)."""
        peer, peer_spool = self._peer(peer_id, push=True)
        retries, retry_delay = self._client_settings()

        def pusher(session: Any) -> PushCycle[Any]:
            kind: type[PushCycle[Any]] = Iec62325Pusher if peer.iec62325 else Pusher
            return kind(
                session,
                peer,
                peer_spool,
                self.ledger,
                retries=retries,
                retry_delay=retry_delay,
                now=self.now,
                progress=progress,
            )

        return await self._cycle(peer, peer_spool, "push", "push", pusher)

    async def _cycle(
        self,
        peer: PeerConfig,
        peer_spool: PeerSpool,
        lock_kind: str,
        status_kind: str,
        make_worker: Callable[[Any], Any],
    ) -> Any:
        """Claim, session, run, record: the part collection and push share."""
        await asyncio.to_thread(peer_spool.ensure)
        async with self._claim(peer.id, lock_kind) as claim:
            # Timed inside the claim: taking it is not this cycle's cost.
            started = time.perf_counter()
            try:
                async with self._open_session(peer, peer_spool) as session:
                    summary = await make_worker(session).run()
                claim.result = " ".join(f"ok: {summary.line()}".split())  # the cycle log
            except ClientError as exc:
                self._observe(lock_kind, peer.id, "failed", started)
                await self._record(peer.id, status_kind, f"failed: {exc}", ok=False)
                if isinstance(exc, AuthenticationRefused):
                    await self._refused(peer.id, exc)
                raise
        self._observe(lock_kind, peer.id, "ok", started)
        await self._record(peer.id, status_kind, f"ok: {summary.line()}", ok=True)
        return summary

    @contextlib.asynccontextmanager
    async def _claim(self, peer_id: str, kind: str) -> AsyncIterator[Claim]:
        """Hold the (peer, kind) claim; :class:`CycleBusy` if another holds it."""
        with busy():
            async with hold_async(self.claims, peer_id, kind) as claim:
                yield claim

    def _open_session(
        self, peer: PeerConfig, peer_spool: PeerSpool
    ) -> contextlib.AbstractAsyncContextManager[Any]:
        """The session of the peer's profile (IEC 62325-504 or CPCSCC v2.3)."""
        if peer.iec62325:
            try:
                return self.iec_session_factory(self.config, peer, peer_spool.work_dir)
            except ValueError as exc:  # e.g. signatures required but no key
                raise NotCallable(peer.id, str(exc)) from None
        return self.session_factory(self.config, peer)

    @staticmethod
    def _observe(kind: str, peer_id: str, result: str, started: float) -> None:
        CYCLE_SECONDS.labels(kind, peer_id, result).observe(time.perf_counter() - started)

    async def _record(self, peer_id: str, kind: str, result: str, *, ok: bool) -> None:
        when = self.now().isoformat(timespec="seconds")

        def write() -> None:
            self.ledger.set_status(peer_id, f"last_{kind}_at", when)
            self.ledger.set_status(peer_id, f"last_{kind}_result", " ".join(result.split()))
            in_a_row = f"{kind}_failures_in_a_row"
            if ok:
                self.ledger.set_status(peer_id, f"last_{kind}_ok_at", when)
                self.ledger.set_status(peer_id, in_a_row, "0")
            else:
                failures = self.ledger.status(peer_id).get(in_a_row, "0")
                count = int(failures) if failures.isdigit() else 0
                self.ledger.set_status(peer_id, in_a_row, str(count + 1))

        await asyncio.to_thread(write)

    async def _refused(self, peer_id: str, exc: AuthenticationRefused) -> None:
        when = self.now().isoformat(timespec="seconds")
        text = f"since {when}: {exc}; cycles stopped until the config is reloaded"
        self.blocked[peer_id] = text
        log.error("%s: AUTHENTICATION REFUSED by the peer %s", peer_id, text)
        await asyncio.to_thread(self.ledger.set_status, peer_id, KV_AUTH_REFUSED, text)

"""``concentrador serve``: the long-running daemon.

Start-up order (each step may rely on the previous ones):

1. the config (already loaded by the CLI);
2. spool folders for every peer, the ledger, the compressor;
3. crash recovery (``Publisher.recover``), a first outbox pass, a
   reassembly sweep and an expiry pass: the spool is consistent before any
   peer can see it;
4. the server listening (mutual TLS through :class:`ReloadableServerTLS`, or
   plain HTTP with a loud warning when ``insecure_http = true``);
5. the spool watcher (polling every ``[spool] poll_interval`` on a shared spool);
6. the periodic jobs on :attr:`Daemon.scheduler` (outbox sweep, reassembly
   sweep, expiry, CRL poll) and the client's collection crons and push
   sweeps (:mod:`concentrador.daemon.schedules`), on one ``AsyncIOScheduler``;
7. ``READY=1`` to systemd.

Signals: SIGTERM/SIGINT stop gracefully (requests in flight finish within
``shutdown_timeout``, running spool passes finish, threads are joined, the
ledger is closed); SIGHUP reloads the config and the TLS material, keeping
the old ones if the new ones are bad.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from dataclasses import dataclass

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from concentrador.client.runner import ClientRunner
from concentrador.config import Config, ConfigError, load_config
from concentrador.console import AdminServer, AdminStartError, ConsoleNode
from concentrador.daemon import sdnotify
from concentrador.daemon.jobs import add_interval_job
from concentrador.daemon.listener import Listener, ListenError
from concentrador.daemon.process import (
    limit_malloc_arenas,
    shrink_tls_receive_buffer,
    take_over_logging,
)
from concentrador.daemon.reload import keep_restart_only_settings, tls_files
from concentrador.daemon.schedules import schedule_peer_jobs, trigger_push
from concentrador.daemon.services import SpoolServices
from concentrador.server.app import build_app
from concentrador.server.state import ServerState
from concentrador.server.tls import ReloadableServerTLS, TLSConfigError
from concentrador.spool.outbound.compress import Compressor
from concentrador.spool.watcher import SpoolWatcher

__all__ = ["Daemon", "DaemonOptions", "StartupError", "run_daemon", "serve"]

log = logging.getLogger("concentrador.daemon.serve")


class StartupError(Exception):
    """The daemon cannot start; the message is the one line the operator sees."""


@dataclass(frozen=True)
class DaemonOptions:
    """Knobs that are not in the config file (tests and benches turn them)."""

    watch: bool = True
    """Run the watchdog spool watcher (the sweeps catch everything regardless)."""
    settle_seconds: float = 2.0
    """How long an outbox file must stay unchanged before it is published."""
    shutdown_timeout: float = 30.0
    """Grace for requests in flight on stop (systemd's TimeoutStopSec is 60)."""
    outbox_sweep_seconds: float = 60.0
    reassembly_sweep_seconds: float = 300.0
    expiry_seconds: float = 600.0
    crl_check_seconds: float = 30.0
    trail: bool = True
    """Record the audit trail in the ledger (``Ledger(trail=...)``)."""
    metrics: bool = True
    """Count and time CPCSCC requests for ``/metrics``. Both off only in
    ``bench/trail_cost_bench.py``, which measures what they cost."""


class Daemon:
    """The server, the spool services, the watcher and the scheduler, together."""

    def __init__(
        self,
        config: Config,
        options: DaemonOptions | None = None,
        *,
        compressor: Compressor | None = None,
    ) -> None:
        self.config = config
        self.options = options or DaemonOptions()
        self._compressor = compressor
        # Spool jobs, collection crons and push sweeps all run on this one.
        self.scheduler = AsyncIOScheduler(timezone=config.node.timezone)
        self.services: SpoolServices | None = None
        self.tls: ReloadableServerTLS | None = None
        self.state: ServerState | None = None
        self._listener: Listener | None = None
        self._watcher: SpoolWatcher | None = None
        self.client: ClientRunner | None = None
        self.console: AdminServer | None = None
        self._reload_lock = asyncio.Lock()
        self._stopped = False

    # -- start ------------------------------------------------------------------------
    @property
    def addresses(self) -> list[tuple[str, int]]:
        """Where the server listens (host, port): the real port when port = 0."""
        return self._listener.addresses if self._listener is not None else []

    @property
    def url(self) -> str:
        scheme = "http" if self.config.server.insecure_http else "https"
        host, port = self.addresses[0]
        host = f"[{host}]" if ":" in host else host
        return f"{scheme}://{host}:{port}/"

    async def start(self) -> None:
        """Bring everything up; raises :class:`StartupError` (after cleaning up)."""
        try:
            await self._start()
        except BaseException:
            await self.stop(notify=False)
            raise

    async def _start(self) -> None:
        loop = asyncio.get_running_loop()
        config = self.config
        self.services = await asyncio.to_thread(
            SpoolServices,
            config,
            settle_seconds=self.options.settle_seconds,
            compressor=self._compressor,
            trail=self.options.trail,
        )
        self.services.bind_loop(loop)
        await loop.run_in_executor(self.services.executor, self.services.startup_pass)
        self.services.request_publish_when_settled_all()
        await self._start_server()
        log.info("listening on %s (%d peer(s))", self.url, len(config.peers))
        if self.options.watch:
            await asyncio.to_thread(self._start_watcher)
        self._add_jobs()
        self._start_client(loop)
        await self._start_console()
        self.scheduler.start()
        sdnotify.ready(f"listening on {self.url}")

    def _start_client(self, loop: asyncio.AbstractEventLoop) -> None:
        """Collection crons and push sweeps for the peers we call."""
        assert self.services is not None
        # The collector awaits its block sets' rebuilds from the one scheduler.
        # The spool jobs' claims: one set of claims (and connections) per process.
        self.client = ClientRunner(
            self.config,
            self.services.ledger,
            rebuild=self.services.rebuild,
            claims=self.services.claims,
        )
        schedule_peer_jobs(self.scheduler, self.config, self.client)

        def published(peer_id: str, _count: int) -> None:
            # Worker thread → loop: push what was just queued within seconds
            # instead of waiting for the next sweep.
            loop.call_soon_threadsafe(trigger_push, self.scheduler, peer_id)

        self.services.on_published = published

    async def _start_console(self) -> None:
        """The operator console on ``[admin] listen``: its own site, never the CPCSCC port."""
        assert self.services is not None
        node = ConsoleNode(
            self.config,
            self.services.ledger,
            self.services.spool,
            listeners=lambda: [self.url] if self.addresses and not self._stopped else [],
            request_push=lambda peer_id: trigger_push(self.scheduler, peer_id),
        )
        self.console = AdminServer(node)
        try:
            await self.console.start()
        except AdminStartError as exc:
            self.console = None
            raise StartupError(str(exc)) from None
        log.info("operator console on %s", ", ".join(node.admin_listeners))

    async def _start_server(self) -> None:
        config = self.config
        assert self.services is not None
        ssl_context = None
        if config.server.insecure_http:
            log.warning(
                "INSECURE: server.insecure_http = true: serving plain HTTP, no TLS, peers "
                "identified by the SOAP header alone; never use this in production"
            )
        else:
            try:
                self.tls = await asyncio.to_thread(ReloadableServerTLS, tls_files(config))
            except TLSConfigError as exc:
                raise StartupError(f"cannot load the server TLS material: {exc}") from None
            ssl_context = self.tls.context
        self.state = ServerState(
            config=config,
            spool=self.services.spool,
            ledger=self.services.ledger,
            classifier=self.services.classifier,
            # A stored block's set is rebuilt by the spool services, not the app.
            rebuild=self.services.rebuild,
        )
        self._listener = Listener(
            build_app(self.state, metrics=self.options.metrics),
            shutdown_timeout=self.options.shutdown_timeout,
            limits=config.server.limits,
        )
        try:
            await self._listener.start(config.server.host, config.server.port, ssl_context)
        except ListenError as exc:
            raise StartupError(str(exc)) from None

    def _start_watcher(self) -> None:
        assert self.services is not None
        shared = self.config.spool  # restart-only, like the spool root
        watcher = SpoolWatcher(
            self.services.spool,
            self.services.peer_ids,
            self.services.on_outbox,
            self.services.on_partial,
            # inotify never sees what another host renamed into a shared spool.
            polling=shared.shared,
            poll_interval=shared.poll_interval,
        )
        watcher.start()
        self._watcher = watcher

    def _stop_watcher(self) -> None:
        watcher, self._watcher = self._watcher, None
        if watcher is not None:
            watcher.stop()

    def _add_jobs(self) -> None:
        services = self.services
        assert services is not None
        opts = self.options

        async def outbox_sweep() -> None:
            services.request_publish_all()

        async def reassembly_sweep() -> None:
            services.request_reassembly_all()

        async def expiry() -> None:
            await asyncio.get_running_loop().run_in_executor(
                services.executor, services.expiry_pass
            )

        async def crl_check() -> None:
            if self.tls is not None:
                # Builds a fresh SSL context from disk when the file changed.
                await asyncio.to_thread(self.tls.reload_if_crl_changed)

        add_interval_job(self.scheduler, "outbox-sweep", outbox_sweep, opts.outbox_sweep_seconds)
        add_interval_job(
            self.scheduler, "reassembly-sweep", reassembly_sweep, opts.reassembly_sweep_seconds
        )
        add_interval_job(self.scheduler, "expiry", expiry, opts.expiry_seconds)
        if self.tls is not None:
            add_interval_job(self.scheduler, "crl-check", crl_check, opts.crl_check_seconds)

    # -- reload -----------------------------------------------------------------------
    async def reload(self) -> bool:
        """SIGHUP: re-read the config and the TLS material; True if applied."""
        async with self._reload_lock:
            if self._stopped or self.services is None:
                return False
            sdnotify.reloading()
            try:
                return await self._reload()
            finally:
                sdnotify.ready(f"listening on {self.url}")

    async def _reload(self) -> bool:
        assert self.services is not None
        path = self.config.path
        try:
            new = await asyncio.to_thread(load_config, path)
        except ConfigError as exc:
            for problem in exc.problems:
                log.error("reload: config: %s", problem)
            log.error("reload refused: keeping the running configuration (%s)", path)
            return False
        new = keep_restart_only_settings(self.config, new)
        if self.tls is not None:
            try:
                await asyncio.to_thread(self.tls.reload, tls_files(new))
            except TLSConfigError as exc:
                log.error("reload refused: %s; keeping the running configuration", exc)
                return False
        old_peers = self.services.peer_ids
        await asyncio.to_thread(self.services.apply_config, new)
        self.config = new
        if self.console is not None:
            self.console.node.config = new  # a new token applies now; listen on restart
        if self.state is not None:
            self.state.config = new
            self.state.classifier = self.services.classifier
        if self._watcher is not None and old_peers != self.services.peer_ids:
            await asyncio.to_thread(self._stop_watcher)
            await asyncio.to_thread(self._start_watcher)
        if self.client is not None:
            schedule_peer_jobs(self.scheduler, new, self.client)
        # New peers may already have files waiting.
        self.services.request_publish_all()
        log.info("configuration reloaded from %s (%d peer(s))", path, len(new.peers))
        return True

    # -- stop -------------------------------------------------------------------------
    async def stop(self, *, notify: bool = True) -> None:
        """Graceful stop; idempotent."""
        if self._stopped:
            return
        self._stopped = True
        if notify:
            sdnotify.stopping()
            log.info(
                "stopping: finishing requests in flight (up to %ss)", self.options.shutdown_timeout
            )
        if self.scheduler.running:
            self.scheduler.shutdown(wait=False)
        await asyncio.to_thread(self._stop_watcher)
        if self.console is not None:
            await self.console.stop()
        if self._listener is not None:
            # Stops listening, lets handlers in flight finish, then cancels
            # the stragglers: an upload cut short aborts its DurableWriter.
            await self._listener.stop()
        if self.services is not None:
            await self.services.drain()
            await asyncio.to_thread(self.services.close)
        if notify:
            log.info("stopped")


async def run_daemon(config: Config, options: DaemonOptions | None = None) -> int:
    """Start, wait for SIGTERM/SIGINT (SIGHUP reloads), stop; the exit code."""
    loop = asyncio.get_running_loop()
    daemon = Daemon(config, options)
    stop = asyncio.Event()
    reloads: set[asyncio.Task[bool]] = set()

    def on_hup() -> None:
        task = loop.create_task(daemon.reload())
        reloads.add(task)
        task.add_done_callback(reloads.discard)

    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    loop.add_signal_handler(signal.SIGHUP, on_hup)
    try:
        try:
            await daemon.start()
        except StartupError as exc:
            log.error("%s", exc)
            return 1
        await stop.wait()
        await daemon.stop()
        return 0
    finally:
        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            loop.remove_signal_handler(signum)
        for task in list(reloads):
            task.cancel()


def serve(config: Config, options: DaemonOptions | None = None) -> int:
    """Entry point of ``concentrador serve``: 0 after a clean stop, 1 if it cannot start."""
    limit_malloc_arenas()
    shrink_tls_receive_buffer()
    take_over_logging()
    with contextlib.suppress(KeyboardInterrupt):
        return asyncio.run(run_daemon(config, options))
    return 0

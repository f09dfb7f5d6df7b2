"""Noticing files as they arrive: every peer's ``outbox/`` and ``partial/``.

A watchdog observer (inotify on Linux) reports changes; this module turns
the noise into one call per settled file:

* dotfiles and temp names (``.x.XXXX``, ``*.part``, ``*~``) are ignored, as
  is anything under a hidden folder, so half-copied files are not picked up;
* events are debounced per path: the callback fires only after ``debounce``
  seconds without a new event *and* with an unchanged size and mtime, so a
  slow ``cp`` of a large block is not handed over half-written;
* except a file that *arrives* whole in the outbox (renamed in: a created or
  moved event of a non-empty file): it is handed over after
  :data:`ARRIVAL_DEBOUNCE`, because the publisher has its own settle rule
  and starts compressing such a file while it settles (a second 2 s wait
  here only delayed every publication; see ``bench/outbox_drop_bench.py``);
* callbacks run on the watcher's own dispatcher thread, one at a time; the
  daemon hops onto its event loop or a worker from there. An exception in a
  callback is logged and does not stop the watcher.

The watcher is an accelerator, not the source of truth: the daemon still
sweeps on a schedule, so an event missed (overflowed inotify queue, files
that were there before start-up) only delays work.

``polling=True`` swaps inotify for watchdog's ``PollingObserver``, which
lists and stats the watched folders every ``poll_interval`` seconds. That is
the mode for a spool shared between hosts (NFS, CephFS): inotify only sees
changes made through the local kernel, so a file another replica (or the
producer on another host) renames into the outbox is never reported by it.
Polling sees every host's changes, at the cost of a directory listing per
interval (``docs/deploy.md``, "Scale-out"). The debouncing above applies
unchanged: a poll reports a file being written as created, then modified,
exactly like inotify, only later.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer
from watchdog.observers.api import BaseObserver
from watchdog.observers.polling import PollingObserver

from concentrador.spool.layout import PeerSpool, Spool, SpoolState, is_temp_name

__all__ = ["ARRIVAL_DEBOUNCE", "DEFAULT_POLL_INTERVAL", "SpoolWatcher"]

log = logging.getLogger(__name__)

ARRIVAL_DEBOUNCE = 0.05
"""Seconds an outbox arrival waits: one callback for a batch renamed in at once."""

DEFAULT_POLL_INTERVAL = 1.0
"""Seconds between two listings of the watched folders when ``polling=True``."""

Callback = Callable[[str, Path], None]


class _Handler(FileSystemEventHandler):
    def __init__(self, watcher: SpoolWatcher, peer: str, kind: SpoolState, base: Path) -> None:
        self._watcher = watcher
        self._peer = peer
        self._kind = kind
        self._base = base

    def on_any_event(self, event: FileSystemEvent) -> None:
        if event.is_directory or event.event_type in ("deleted", "opened", "closed_no_write"):
            return
        # For a rename the interesting name is where the file went.
        raw = getattr(event, "dest_path", "") or event.src_path
        path = Path(os.fsdecode(raw))
        try:
            relative = path.relative_to(self._base)
        except ValueError:
            return  # moved out of the watched folder
        if any(is_temp_name(part) for part in relative.parts):
            return
        arrival = self._kind is SpoolState.OUTBOX and event.event_type in ("created", "moved")
        self._watcher._touch(self._peer, self._kind, path, arrival=arrival)


class SpoolWatcher:
    """Calls ``on_outbox(peer, path)`` / ``on_partial(peer, path)`` for settled files.

    ``polling``: list the folders every ``poll_interval`` seconds instead of
    using inotify; needed when other hosts write into the spool (a shared
    NFS/CephFS spool), whose changes inotify never reports.
    """

    def __init__(
        self,
        spool: Spool,
        peers: Iterable[str],
        on_outbox: Callback,
        on_partial: Callback,
        *,
        debounce: float = 2.0,
        polling: bool = False,
        poll_interval: float = DEFAULT_POLL_INTERVAL,
    ) -> None:
        if not poll_interval > 0:  # also refuses NaN
            raise ValueError(
                f"SpoolWatcher poll_interval must be > 0 seconds, got {poll_interval!r}"
            )
        self.spool = spool
        self.peers: list[PeerSpool] = [spool.peer(p) for p in peers]
        self._callbacks = {SpoolState.OUTBOX: on_outbox, SpoolState.PARTIAL: on_partial}
        self.debounce = debounce
        self.polling = polling
        self.poll_interval = poll_interval
        # path -> (peer, kind, deadline, (size, mtime) seen at the last event)
        self._pending: dict[Path, tuple[str, SpoolState, float, tuple[int, int] | None]] = {}
        self._cond = threading.Condition()
        self._stopping = False
        self._observer: BaseObserver | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError("SpoolWatcher already started")
        self._stopping = False
        observer: BaseObserver = (
            PollingObserver(timeout=self.poll_interval) if self.polling else Observer()
        )
        for peer in self.peers:
            peer.ensure()
            outbox, partial = peer.dir(SpoolState.OUTBOX), peer.dir(SpoolState.PARTIAL)
            handler = _Handler(self, peer.peer, SpoolState.OUTBOX, outbox)
            observer.schedule(handler, str(outbox), recursive=True)  # <TYPE>/ subfolders
            handler = _Handler(self, peer.peer, SpoolState.PARTIAL, partial)
            observer.schedule(handler, str(partial), recursive=False)
        observer.daemon = True
        observer.start()
        self._observer = observer
        self._thread = threading.Thread(target=self._dispatch, name="spool-watcher", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop watching; pending (unsettled) paths are dropped (a sweep finds them)."""
        if self._observer is not None:
            self._observer.stop()
            self._observer.join(timeout)
            self._observer = None
        with self._cond:
            self._stopping = True
            self._pending.clear()
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def __enter__(self) -> SpoolWatcher:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- debouncing ----------------------------------------------------------
    def _touch(self, peer: str, kind: SpoolState, path: Path, *, arrival: bool = False) -> None:
        signature = _signature(path)
        # An empty file just created is being written: wait like for a write.
        quick = arrival and signature is not None and signature[0] > 0
        delay = min(ARRIVAL_DEBOUNCE, self.debounce) if quick else self.debounce
        with self._cond:
            self._pending[path] = (peer, kind, time.monotonic() + delay, signature)
            self._cond.notify()

    def _due(self) -> list[tuple[str, SpoolState, Path]]:
        """Pop the settled paths; wait (under the condition) until one is due."""
        while not self._stopping:
            now = time.monotonic()
            due = []
            for path, (peer, kind, deadline, seen) in list(self._pending.items()):
                if deadline > now:
                    continue
                signature = _signature(path)
                if signature is None:  # gone (moved on by someone): nothing to do
                    del self._pending[path]
                elif signature != seen:  # still being written: wait another round
                    self._pending[path] = (peer, kind, now + self.debounce, signature)
                else:
                    del self._pending[path]
                    due.append((peer, kind, path))
            if due:
                return due
            deadlines = [entry[2] for entry in self._pending.values()]
            self._cond.wait(timeout=max(0.0, min(deadlines) - now) if deadlines else None)
        return []

    def _dispatch(self) -> None:
        while True:
            with self._cond:
                due = self._due()
                if self._stopping:
                    return
            for peer, kind, path in sorted(due, key=lambda item: str(item[2])):
                try:
                    self._callbacks[kind](peer, path)
                except Exception:
                    log.exception("%s: handling %s failed", peer, path)


def _signature(path: Path) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_size, st.st_mtime_ns)

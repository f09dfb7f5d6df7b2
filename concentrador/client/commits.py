"""Group commit of the collected whole files: one folder fsync and one ledger
transaction for every file that is waiting, not one of each per file.

The collection cycle hands each verified whole file to :class:`GroupCommits`
and confirms it once the returned future is done. The first file starts a
commit pass in a worker thread at once, alone (it costs what it always did:
:meth:`InboundStore.commit`); the files verified while a pass runs wait and
then go together in the next pass (:meth:`InboundStore.commit_group`): each
file fsynced and renamed, each destination folder fsynced once, one ledger
transaction. No file waits for a group to fill, so nothing is delayed: groups
form only when files arrive faster than one pass (``connections = N``).

Every future of a pass is done when that whole pass is durable, and fails
with the pass's error if it failed: nothing of a failed group is confirmed.
Passes are independent; a later one still runs after a failure (its files
are stored, not confirmed: the cycle ends on the first failure it awaits).
"""

from __future__ import annotations

import asyncio
import functools

from concentrador.client.download import PendingDownload
from concentrador.spool.inbound.store import InboundStore

__all__ = ["MAX_GROUP", "GroupCommits"]

MAX_GROUP = 64
"""Files in one pass at most (each may hold up to 1 MiB in memory until it is written)."""

_Waiting = tuple[PendingDownload, str, asyncio.Future[None]]


class GroupCommits:
    """Commits whole files for one collection cycle, in groups (see the module docstring)."""

    def __init__(self, store: InboundStore, *, max_group: int = MAX_GROUP) -> None:
        self.store = store
        self.max_group = max_group
        self._waiting: list[_Waiting] = []
        self._busy = False

    def submit(self, download: PendingDownload, name: str) -> asyncio.Future[None]:
        """Commit ``download`` as ``name``; the future is done once it is durable."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.append((download, name, future))
        if not self._busy:
            self._start()
        return future

    def _start(self) -> None:
        group = self._waiting[: self.max_group]
        del self._waiting[: self.max_group]
        self._busy = True
        # run_in_executor, not to_thread: no context copy nor coroutine wrapper
        # per pass (nothing here reads a context variable).
        work = asyncio.get_running_loop().run_in_executor(None, self._commit, group)
        work.add_done_callback(functools.partial(self._finished, group))

    def _finished(self, group: list[_Waiting], work: asyncio.Future[None]) -> None:
        self._busy = False
        failure = None if work.cancelled() else work.exception()
        for _, _, future in group:
            if future.done():
                continue  # the cycle gave up on it (cancelled)
            if work.cancelled():
                future.cancel()
            elif failure is not None:
                future.set_exception(failure)
            else:
                future.set_result(None)
        if self._waiting:
            self._start()

    def _commit(self, group: list[_Waiting]) -> None:
        """In a worker thread: write what is held, commit; temp files go if that fails."""
        downloads = [download for download, _, _ in group]
        try:
            writers = [download.finish() for download in downloads]
            if len(writers) == 1:
                self.store.commit(writers[0], group[0][1])
            else:
                for writer, (_, name, _) in zip(writers, group, strict=True):
                    if writer.name != name:
                        raise ValueError(f"writer was opened for {writer.name!r}, not {name!r}")
                self.store.commit_group(writers)
        finally:
            for download in downloads:
                download.abort()  # a no-op once committed

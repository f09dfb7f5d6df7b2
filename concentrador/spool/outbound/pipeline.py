"""A one-thread conveyor: a publish pass commits files while it compresses the next.

Compressing takes the cores; committing a file waits (for the end of its
settle time) and touches the disk (fsyncs, one ledger transaction, renames).
:class:`CommitLine` runs the second kind of work in one background thread,
in the order the items arrive, so neither the wait nor the disk leaves the
cores idle and the files of a batch appear in ``published/`` one by one.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from typing import Generic, TypeVar

__all__ = ["CommitLine"]

Item = TypeVar("Item")
Result = TypeVar("Result")


class _Stop:
    """Marks the end of the items (the queue never carries None)."""


_STOP = _Stop()


class CommitLine(Generic[Item, Result]):
    """Runs ``work`` on each item :meth:`put`, in order, in one thread.

    ``work`` is expected to handle its own errors (the publisher logs them
    and returns None). Anything that escapes it anyway stops the line: later
    items are not worked on, and :meth:`close` raises it in the caller.
    """

    def __init__(self, work: Callable[[Item], Result | None], *, name: str) -> None:
        self._work = work
        self._queue: queue.SimpleQueue[Item | _Stop] = queue.SimpleQueue()
        self._error: BaseException | None = None
        self.results: list[Result] = []
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def put(self, item: Item) -> None:
        self._queue.put(item)

    def close(self) -> list[Result]:
        """Wait until every item put so far is done; the non-None results, in order."""
        if self._thread.is_alive():
            self._queue.put(_STOP)
            self._thread.join()
        if self._error is not None:
            error, self._error = self._error, None
            raise error
        return self.results

    def __enter__(self) -> CommitLine[Item, Result]:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _run(self) -> None:
        while not isinstance(item := self._queue.get(), _Stop):
            if self._error is not None:
                continue  # the line is broken: drain, do nothing
            try:
                result = self._work(item)
            except BaseException as exc:  # handed to the caller in close()
                self._error = exc
                continue
            if result is not None:
                self.results.append(result)

"""The reader's input queue: fed pieces, consumed without copying payload.

Headers and the small fields are copied out (they are bounded by the
limits); payload leaves as ``memoryview`` slices of the fed objects.
"""

from __future__ import annotations

from collections import deque


class FeedBuffer:
    """Pieces fed to the reader and not yet consumed, in order."""

    __slots__ = ("_pending", "available", "offset")

    def __init__(self) -> None:
        self._pending: deque[memoryview] = deque()
        self.available = 0  # bytes held
        self.offset = 0  # message offset of the next unconsumed byte

    def append(self, data: bytes) -> None:
        self._pending.append(memoryview(data))
        self.available += len(data)

    def take_exact(self, size: int) -> bytes | None:
        """Copy out exactly ``size`` bytes, or None (nothing consumed) if fewer are held."""
        if self.available < size:
            return None
        if not size:
            return b""
        first = self._pending[0]
        if len(first) >= size:
            out = first[:size].tobytes()
            self._advance(first, size)
            return out
        parts = bytearray()  # a header or field split across feeds: gather it
        while len(parts) < size:
            first = self._pending[0]
            take = min(len(first), size - len(parts))
            parts += first[:take]
            self._advance(first, take)
        return bytes(parts)

    def take_upto(self, size: int) -> memoryview:
        """Up to ``size`` bytes (at least 1; the buffer must not be empty) from
        the first held piece, without copying."""
        first = self._pending[0]
        if len(first) <= size:
            self._pending.popleft()
            self.available -= len(first)
            self.offset += len(first)
            return first
        piece = first[:size]
        self._advance(first, size)
        return piece

    def _advance(self, first: memoryview, size: int) -> None:
        if size == len(first):
            self._pending.popleft()
        else:
            self._pending[0] = first[size:]
        self.available -= size
        self.offset += size

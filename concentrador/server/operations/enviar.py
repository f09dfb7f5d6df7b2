"""enviarFichero: receive a pushed file or block (CPCSCC.md §4.5).

The attachment is streamed: each piece goes into a ``DurableWriter`` in the
peer's ``.work/`` (the MD5 follows along), and the §4.5 checks are applied in
their decided order once the message has ended:

1. more than 8 MiB: code 5. The DIME reader raises the moment a header
   announces it, so we answer at once and read no further;
2. an unsafe name: code 2, nothing stored;
3. checksum mismatch: code 1;
4. participant not allowed: code 3;
5. type not allowed: code 4;
6. store durably (block → ``partial/``, whole → ``inbox/``, outside the load
   window → ``manual/``); a storage failure is code 2 with nothing left over;
7. outside the load window: code 6;
8. otherwise 0.

Checks 2, 4 and 5 depend only on the name, so they are known before the
first byte: a file that will be refused is hashed (for check 3) but never
written to disk, which also keeps a hostile peer from using our disk.

Disk writes leave the event loop in batches of about 1 MiB (one thread hop
per batch, not per received piece). Measured on the (shared, loaded) dev box:
a ``to_thread`` hop costs 130-270 µs, so hopping per 64 KiB piece would add
~20-35 ms per 8 MiB block against ~1-2 ms batched; a 1 MiB ``os.write`` to
the page cache takes 0.4-4.6 ms, too long (and too variable under writeback)
to do on the loop itself.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from concentrador.protocol import (
    DimeErrorCode,
    DimeLimitError,
    Fichero,
    PushResult,
    TypeClassifier,
    is_valid_peer_filename,
    parse_block_name,
    participant_code,
)

if TYPE_CHECKING:
    from concentrador.config.model import PeerConfig
    from concentrador.server.body import IncomingDime
    from concentrador.spool.inbound.store import InboundStore, InboundWriter

__all__ = ["BATCH_BYTES", "ReceiveContext", "ReceiveOutcome", "receive_file"]

log = logging.getLogger(__name__)

BATCH_BYTES = 1024 * 1024


class _Sink(Protocol):
    size: int

    def write_many(self, pieces: list[memoryview]) -> None: ...

    def abort(self) -> None: ...


class _StoringSink:
    """Writes into the inbound writer (temp file in ``.work/``, MD5 inside)."""

    def __init__(self, writer: InboundWriter) -> None:
        self.writer = writer
        self.size = 0

    def write_many(self, pieces: list[memoryview]) -> None:
        for piece in pieces:
            self.writer.write(piece)
            self.size += len(piece)

    @property
    def md5(self) -> str:
        return self.writer.md5

    def abort(self) -> None:
        self.writer.abort()


class _HashingSink:
    """Keeps only the size and (optionally) the MD5: for files we will refuse."""

    def __init__(self, *, hashing: bool) -> None:
        import hashlib

        self._md5 = hashlib.md5(usedforsecurity=False) if hashing else None
        self.size = 0

    def write_many(self, pieces: list[memoryview]) -> None:
        for piece in pieces:
            if self._md5 is not None:
                self._md5.update(piece)
            self.size += len(piece)

    @property
    def md5(self) -> str | None:
        return self._md5.hexdigest() if self._md5 is not None else None

    def abort(self) -> None:
        pass


@dataclass
class ReceiveContext:
    """What one enviarFichero needs to know about its peer and our spool."""

    peer: PeerConfig
    store: InboundStore
    classifier: TypeClassifier
    outside_window: bool


@dataclass(frozen=True)
class ReceiveOutcome:
    """The answer code, and for a stored block the original to try to rebuild."""

    result: PushResult
    block_original: str | None = None


async def _stream_into(sink: _Sink, pieces: AsyncIterator[memoryview]) -> OSError | None:
    """Copy ``pieces`` into ``sink`` in ~1 MiB batches off the loop.

    A storage error does not stop the reading (the §4.5 order still needs the
    size check): it is returned, and the rest is only counted.
    """
    batch: list[memoryview] = []
    batched = 0
    failure: OSError | None = None
    current: _Sink = sink
    async for piece in pieces:
        batch.append(piece)
        batched += len(piece)
        if batched >= BATCH_BYTES:
            failure = await _flush(current, batch) or failure
            if failure is not None and current is sink:
                current = _HashingSink(hashing=False)
            batch, batched = [], 0
    if batch:
        failure = await _flush(current, batch) or failure
    return failure


async def _flush(sink: _Sink, batch: list[memoryview]) -> OSError | None:
    try:
        await asyncio.to_thread(sink.write_many, batch)
    except OSError as exc:  # StorageError: DurableWriter removed its temp already
        sink.abort()
        return exc
    return None


async def receive_file(
    context: ReceiveContext, fichero: Fichero, incoming: IncomingDime
) -> ReceiveOutcome:
    """Stream the attachment, apply the §4.5 checks in order, store it.

    Malformed DIME (anything but an oversized attachment) propagates as a
    ``DimeError``, and a third record (CPCSCC.md §5 allows two; seen by
    ``incoming.finish()``, before anything is committed) as a
    ``DimeExtraRecord``, after whatever was written has been removed.
    """
    peer = context.peer
    name = fichero.nombre
    name_ok = is_valid_peer_filename(name)
    participant_ok = peer.may_send_participant(participant_code(name))
    type_ok = peer.may_send_type(context.classifier.classify(name))

    sink: _Sink
    open_failure: OSError | None = None
    if name_ok and participant_ok and type_ok:
        try:
            writer = await asyncio.to_thread(
                context.store.open, name, manual=context.outside_window
            )
            sink = _StoringSink(writer)
        except OSError as exc:
            open_failure = exc
            sink = _HashingSink(hashing=True)
    else:
        sink = _HashingSink(hashing=name_ok)

    try:
        write_failure = await _stream_into(sink, incoming.attachment())
        await incoming.finish()
    except DimeLimitError as exc:
        sink.abort()
        if exc.code is not DimeErrorCode.ATTACHMENT_TOO_LARGE:
            raise
        log.warning("%s: %s refused: %s", peer.id, ascii(name[:80]), exc)
        return ReceiveOutcome(PushResult.TOO_LARGE)
    except BaseException:
        sink.abort()
        raise

    # After a failed write the writer's MD5 covers only part of the file;
    # the answer is then 2 (retryable, like 1) whatever the checksum was.
    md5 = None if write_failure is not None else sink.md5
    result = _check(context, fichero, md5, name_ok, participant_ok, type_ok)
    if result is not None:
        sink.abort()
        return ReceiveOutcome(result)
    failure = open_failure or write_failure
    if failure is not None or not isinstance(sink, _StoringSink):
        log.error("%s: could not store %s: %s", peer.id, name, failure)
        sink.abort()
        return ReceiveOutcome(PushResult.GENERIC_ERROR)
    try:
        stored = await asyncio.to_thread(context.store.commit, sink.writer, name)
    except OSError as exc:
        log.error("%s: could not store %s: %s", peer.id, name, exc)
        sink.abort()
        return ReceiveOutcome(PushResult.GENERIC_ERROR)
    block = parse_block_name(name)
    log.info("%s: received %s (%d bytes) into %s", peer.id, name, sink.size, stored.parent.name)
    result = PushResult.OUTSIDE_LOAD_WINDOW if context.outside_window else PushResult.STORED
    return ReceiveOutcome(result, block.original if block is not None else None)


def _check(
    context: ReceiveContext,
    fichero: Fichero,
    md5: str | None,
    name_ok: bool,
    participant_ok: bool,
    type_ok: bool,
) -> PushResult | None:
    """Checks 2-5 of the §4.5 order, once the size is known to be fine."""
    peer_id = context.peer.id
    name = fichero.nombre
    if not name_ok:
        log.warning("%s pushed a file with an unsafe name %s", peer_id, ascii(name[:80]))
        return PushResult.GENERIC_ERROR
    if md5 is not None and not fichero.matches(md5):
        log.warning(
            "%s: checksum mismatch for %s: announced %s, received %s",
            peer_id,
            name,
            fichero.checksum[:64],
            md5,
        )
        return PushResult.CHECKSUM_MISMATCH
    if not participant_ok:
        log.warning("%s may not send participant %s (%s)", peer_id, participant_code(name), name)
        return PushResult.PARTICIPANT_NOT_ALLOWED
    if not type_ok:
        log.warning(
            "%s may not send type %s (%s)", peer_id, context.classifier.classify(name), name
        )
        return PushResult.TYPE_NOT_ALLOWED
    return None

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
from concentrador.spool.inbound.store import InboundStore

if TYPE_CHECKING:
    from concentrador.config.model import PeerConfig
    from concentrador.server.body import IncomingDime
    from concentrador.server.state import ServerState
    from concentrador.spool.inbound.store import InboundWriter

__all__ = [
    "BATCH_BYTES",
    "Admission",
    "ReceiveContext",
    "ReceiveOutcome",
    "admit",
    "receive_context",
    "receive_file",
    "refusal",
    "store_received",
]

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
    """What one received file (enviarFichero or a 504 put) needs to know about
    its peer and our spool."""

    peer: PeerConfig
    store: InboundStore
    classifier: TypeClassifier
    outside_window: bool


def receive_context(state: ServerState, peer: PeerConfig, remote: str | None) -> ReceiveContext:
    """The context of a file ``peer`` is sending now (load window read from the clock)."""
    peer_spool = state.peer_spool(peer)
    if state.inbound_store is not None:
        store = state.inbound_store(peer_spool, peer)
    else:
        store = InboundStore(peer_spool, state.ledger, decompress=peer.decompress, remote=remote)
    window = peer.load_window
    return ReceiveContext(
        peer=peer,
        store=store,
        classifier=state.classifier,
        outside_window=window is not None and not window.contains(state.local_now().time()),
    )


@dataclass(frozen=True)
class Admission:
    """The checks that depend on the name alone (2, 4 and 5 of the order).

    Known before the first byte: a file that will be refused is never
    written to disk. Shared by both profiles (enviarFichero, 504 put).
    """

    name_ok: bool
    participant_ok: bool
    type_ok: bool

    @property
    def storable(self) -> bool:
        return self.name_ok and self.participant_ok and self.type_ok


def admit(context: ReceiveContext, name: str) -> Admission:
    """Checks 2, 4 and 5 for ``name``, sent by ``context.peer``."""
    peer = context.peer
    return Admission(
        name_ok=is_valid_peer_filename(name),
        participant_ok=peer.may_send_participant(participant_code(name)),
        type_ok=peer.may_send_type(context.classifier.classify(name)),
    )


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
    admission = admit(context, name)

    sink: _Sink
    open_failure: OSError | None = None
    if admission.storable:
        try:
            writer = await asyncio.to_thread(
                context.store.open, name, manual=context.outside_window
            )
            sink = _StoringSink(writer)
        except OSError as exc:
            open_failure = exc
            sink = _HashingSink(hashing=True)
    else:
        sink = _HashingSink(hashing=admission.name_ok)

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
    result = refusal(context, name, admission, fichero, md5)
    if result is not None:
        sink.abort()
        return ReceiveOutcome(result)
    failure = open_failure or write_failure
    if failure is not None or not isinstance(sink, _StoringSink):
        log.error("%s: could not store %s: %s", peer.id, name, failure)
        sink.abort()
        return ReceiveOutcome(PushResult.GENERIC_ERROR)
    return await store_received(context, sink.writer, name)


async def store_received(
    context: ReceiveContext, writer: InboundWriter, name: str
) -> ReceiveOutcome:
    """Step 6 on: commit what ``writer`` received (it passed :func:`refusal`).

    The answer is code 6 outside the load window, else 0; a stored block
    names its original, to be rebuilt by the caller's scheduler.
    """
    try:
        stored = await asyncio.to_thread(context.store.commit, writer, name)
    except OSError as exc:
        log.error("%s: could not store %s: %s", context.peer.id, name, exc)
        writer.abort()
        return ReceiveOutcome(PushResult.GENERIC_ERROR)
    block = parse_block_name(name)
    log.info(
        "%s: received %s (%d bytes) into %s",
        context.peer.id,
        name,
        writer.size,
        stored.parent.name,
    )
    result = PushResult.OUTSIDE_LOAD_WINDOW if context.outside_window else PushResult.STORED
    return ReceiveOutcome(result, block.original if block is not None else None)


def refusal(
    context: ReceiveContext,
    name: str,
    admission: Admission,
    announced: Fichero | None,
    md5: str | None,
) -> PushResult | None:
    """Checks 2-5 of the §4.5 order, once the size is known to be fine.

    ``announced`` carries the checksum the peer gave (a 504 put may give
    none: check 3 is then skipped); ``md5`` is what was received (``None``
    when it is unknown, e.g. after a failed write).
    """
    peer_id = context.peer.id
    if not admission.name_ok:
        log.warning("%s pushed a file with an unsafe name %s", peer_id, ascii(name[:80]))
        return PushResult.GENERIC_ERROR
    if announced is not None and md5 is not None and not announced.matches(md5):
        log.warning(
            "%s: checksum mismatch for %s: announced %s, received %s",
            peer_id,
            name,
            announced.checksum[:64],
            md5,
        )
        return PushResult.CHECKSUM_MISMATCH
    if not admission.participant_ok:
        log.warning("%s may not send participant %s (%s)", peer_id, participant_code(name), name)
        return PushResult.PARTICIPANT_NOT_ALLOWED
    if not admission.type_ok:
        log.warning(
            "%s may not send type %s (%s)", peer_id, context.classifier.classify(name), name
        )
        return PushResult.TYPE_NOT_ALLOWED
    return None

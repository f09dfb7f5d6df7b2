"""Step 1 of a publication: the bytes to publish for one outbox file.

An operator's file is compressed to one bzip2 stream. A file that already
is bzip2 is published as it is, but only when a reader of its *first*
stream gets everything (pbzip2 and ``cat a.bz2 b.bz2`` make several
streams); otherwise it is re-compressed as a single stream. Either way the
bytes stream into a :class:`BlockSink`; the file is never held whole in
memory.
"""

from __future__ import annotations

import bz2
import logging

from concentrador.protocol import SingleStreamChecker
from concentrador.spool.outbound.commit import BlockSink
from concentrador.spool.outbound.compress import Compressor
from concentrador.spool.outbound.scan import OutboxFile

__all__ = ["produce_publishable"]

# The publisher's logger: these lines belong with its other messages.
log = logging.getLogger("concentrador.spool.outbound.publisher")

_READ_SIZE = 1 << 20


def produce_publishable(
    candidate: OutboxFile, already_bzip2: bool, sink: BlockSink, compressor: Compressor
) -> str | None:
    """Stream the publishable bytes into ``sink``; a reason if the file is refused."""
    if not already_bzip2:
        compressor.compress_stream(candidate.path, sink)
        return None
    checker = SingleStreamChecker()
    with open(candidate.path, "rb") as handle:
        while piece := handle.read(_READ_SIZE):
            checker.feed(piece)
            if not checker.ok:
                break
            sink(piece)
        else:
            checker.finish()
    if checker.error is not None:
        return f"it starts like bzip2 but is not a valid bzip2 file: {checker.error}"
    if checker.extra_data:
        log.info(
            "%s holds more than one bzip2 stream (or trailing data);"
            " re-compressing it as a single stream",
            candidate.relative,
        )
        sink.reset()
        with bz2.open(candidate.path, "rb") as decompressed:
            compressor.compress_stream(decompressed, sink)
    return None

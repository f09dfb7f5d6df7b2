"""Throughput of the DIME reader and writer next to hashlib.md5.

    .venv/bin/python bench/dime_bench.py [--repeat N]

An 8 MiB payload (the largest block a receiver accepts) is fed in 64 KiB
pieces, unchunked and as Axis-style 1 MiB chunks. Each figure is the best of
N runs, in MB/s of payload (1 MB = 10**6 bytes). The reader only slices, so
it should run far above the 1 GB/s target and far above md5, which the
adapters run over the same bytes anyway.

The last two reader lines justify memoryview data events: one 8 MiB feed
read as memoryview slices, against the same with each slice turned into
``bytes`` (what a bytes-returning reader would have to do).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import time
from collections.abc import Callable

from concentrador.protocol.dime import (
    NEED_DATA,
    DimeMessageWriter,
    DimeReader,
    RecordData,
    encode_message,
)

PAYLOAD_SIZE = 8 * 1024 * 1024
PIECE = 64 * 1024
CHUNK = 1024 * 1024
ENVELOPE = b"<soapenv:Envelope>" + b"x" * 600 + b"</soapenv:Envelope>"


def split(data: bytes, size: int) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


def best_of(repeat: int, run: Callable[[], int]) -> float:
    """Best MB/s over ``repeat`` runs of ``run`` (which returns payload bytes handled)."""
    best = 0.0
    for _ in range(repeat):
        start = time.perf_counter()
        handled = run()
        elapsed = time.perf_counter() - start
        best = max(best, handled / elapsed / 1e6)
    return best


def read_all(pieces: list[bytes], to_bytes: bool = False) -> int:
    reader = DimeReader()
    seen = 0
    for piece in [*pieces, b""]:
        reader.receive_data(piece)
        while (event := reader.next_event()) is not NEED_DATA:
            if isinstance(event, RecordData) and event.index == 1:
                seen += len(bytes(event.data) if to_bytes else event.data)
    assert seen == PAYLOAD_SIZE
    return seen


def write_all(pieces: list[bytes], chunk_size: int | None) -> int:
    writer = DimeMessageWriter(ENVELOPE, PAYLOAD_SIZE, chunk_size=chunk_size)
    produced = len(writer.begin())
    for piece in pieces:
        for part in writer.write(piece):
            produced += len(part)
    produced += len(writer.end())
    assert produced == writer.total_length
    return PAYLOAD_SIZE


def md5_all(pieces: list[bytes]) -> int:
    digest = hashlib.md5()
    for piece in pieces:
        digest.update(piece)
    digest.hexdigest()
    return PAYLOAD_SIZE


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7)
    repeat = parser.parse_args().repeat

    payload = os.urandom(PAYLOAD_SIZE)
    payload_pieces = split(payload, PIECE)
    plain = encode_message(ENVELOPE, payload)
    chunked = encode_message(ENVELOPE, payload, chunk_size=CHUNK)
    plain_pieces, chunked_pieces = split(plain, PIECE), split(chunked, PIECE)

    rows = [
        ("reader, 64 KiB feeds", lambda: read_all(plain_pieces)),
        ("reader, 64 KiB feeds, 1 MiB chunks", lambda: read_all(chunked_pieces)),
        ("reader, one 8 MiB feed (memoryview)", lambda: read_all([plain])),
        ("reader, one 8 MiB feed (as bytes)", lambda: read_all([plain], to_bytes=True)),
        ("writer, 64 KiB pieces", lambda: write_all(payload_pieces, None)),
        ("writer, 64 KiB pieces, 1 MiB chunks", lambda: write_all(payload_pieces, CHUNK)),
        ("hashlib.md5, 64 KiB pieces", lambda: md5_all(payload_pieces)),
    ]
    print(f"payload {PAYLOAD_SIZE} bytes, best of {repeat}")
    for label, run in rows:
        print(f"{label:<40} {best_of(repeat, run):>12,.0f} MB/s")


if __name__ == "__main__":
    main()

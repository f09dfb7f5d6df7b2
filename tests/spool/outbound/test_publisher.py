"""Outbox → published/sending: naming, splitting, checksums, types, refusals."""

from __future__ import annotations

import bz2
import hashlib
import logging
import os
import random
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from concentrador.protocol.filetypes import TypeClassifier
from concentrador.spool.layout import PeerSpool, SpoolState
from concentrador.spool.ledger import Ledger
from concentrador.spool.outbound.compress import Compressor, detect_compressor
from concentrador.spool.outbound.publisher import Publisher
from concentrador.spool.outbound.scan import OutboxFile, SettleTracker

MIB = 1_048_576
PEER = "PEER1"


def single_stream(data: bytes) -> bool:
    decompressor = bz2.BZ2Decompressor()
    decompressor.decompress(data)
    return decompressor.eof and not decompressor.unused_data


@pytest.fixture(
    params=[
        "threads",
        pytest.param(
            "lbzip2",
            marks=pytest.mark.skipif(not shutil.which("lbzip2"), reason="lbzip2 absent"),
        ),
    ]
)
def compressor(request: pytest.FixtureRequest) -> Iterator[Compressor]:
    made = detect_compressor(request.param, threads=2)
    yield made
    made.close()


@pytest.fixture
def spool(tmp_path: Path) -> PeerSpool:
    return PeerSpool(tmp_path / "spool", PEER).ensure()


def make_publisher(
    spool: PeerSpool,
    ledger: Ledger,
    compressor: Compressor,
    *,
    block_size: int = 8_000_000,
    deliver: str = "publish",
    settle_seconds: float = 0,
) -> Publisher:
    return Publisher(
        spool,
        ledger,
        classifier=TypeClassifier(),
        block_size=block_size,
        deliver=deliver,
        compressor=compressor,
        settle_seconds=settle_seconds,
    )


def drop(spool: PeerSpool, relative: str, data: bytes) -> Path:
    path = spool.dir(SpoolState.OUTBOX) / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def listing(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def f1_text(lines: int, seed: int = 1) -> bytes:
    rnd = random.Random(seed)
    return "".join(
        f"ES0021{rnd.randrange(10**12):012d}AB0F;11;2024/03/01 {i % 24:02d}:00:00;0;"
        f"{rnd.randrange(4000)};0;0;0;0;0;0;0;0;0;0;0;0;0;0;0;1;1\n"
        for i in range(lines)
    ).encode()


def test_large_random_file_is_split_into_three_blocks(
    spool: PeerSpool, ledger: Ledger, tmp_path: Path
) -> None:
    original = os.urandom(20_000_000)  # random: compresses to ~20.1 MB
    drop(spool, "F1_0086_20240101_20240102.0", original)
    with detect_compressor() as compressor:
        [result] = make_publisher(spool, ledger, compressor).publish_pending()

    name = "F1_0086_20240101_20240102.0.bz2"
    expected = [f"{name}.{k}_3" for k in (1, 2, 3)]
    assert result.published_name == name and result.file_type == "CUR"
    assert [b.name for b in result.blocks] == expected
    published = spool.dir(SpoolState.PUBLISHED)
    assert listing(published) == expected
    assert [b.size for b in result.blocks[:2]] == [8_000_000, 8_000_000]

    whole = b"".join((published / n).read_bytes() for n in expected)
    assert bz2.decompress(whole) == original and single_stream(whole)
    entries = {e.name: e for e in ledger.entries_of(PEER, name)}
    assert sorted(entries) == expected
    for block in result.blocks:
        on_disk = (published / block.name).read_bytes()
        assert entries[block.name].md5 == block.md5 == hashlib.md5(on_disk).hexdigest()
        assert entries[block.name].size == len(on_disk) == block.size
        assert entries[block.name].state == "published"
    # The original is archived, byte for byte; nothing is left in the outbox.
    assert (spool.dir(SpoolState.ARCHIVE) / "F1_0086_20240101_20240102.0").read_bytes() == original
    assert listing(spool.dir(SpoolState.OUTBOX)) == []
    assert [p.name for p in spool.work_dir.glob("publish-*")] == []


def test_plain_file_gets_bz2_suffix(
    spool: PeerSpool, ledger: Ledger, compressor: Compressor
) -> None:
    text = f1_text(3000)
    drop(spool, "P1_0086_20240101_20240102.1", text)
    [result] = make_publisher(spool, ledger, compressor).publish_pending()
    assert result.published_name == "P1_0086_20240101_20240102.1.bz2"
    [block] = result.blocks
    data = (spool.dir(SpoolState.PUBLISHED) / block.name).read_bytes()
    assert bz2.decompress(data) == text and single_stream(data)
    assert ledger.lookup(PEER, block.name).md5 == hashlib.md5(data).hexdigest()  # type: ignore[union-attr]


def test_bzip2_file_keeps_its_name_and_bytes(
    spool: PeerSpool, ledger: Ledger, compressor: Compressor
) -> None:
    compressed = bz2.compress(f1_text(2000))
    drop(spool, "F5_0086_20240101.0", compressed)  # no .bz2 suffix: detected by magic
    [result] = make_publisher(spool, ledger, compressor).publish_pending()
    assert result.published_name == "F5_0086_20240101.0"
    assert (spool.dir(SpoolState.PUBLISHED) / "F5_0086_20240101.0").read_bytes() == compressed


def test_large_bzip2_file_is_split_unchanged(
    spool: PeerSpool, ledger: Ledger, compressor: Compressor
) -> None:
    compressed = bz2.compress(random.Random(3).randbytes(2_500_000), 1)
    drop(spool, "P2_0086_20240101.0.bz2", compressed)
    [result] = make_publisher(spool, ledger, compressor, block_size=MIB).publish_pending()
    assert result.published_name == "P2_0086_20240101.0.bz2"
    assert [b.name for b in result.blocks] == [f"P2_0086_20240101.0.bz2.{k}_3" for k in (1, 2, 3)]
    published = spool.dir(SpoolState.PUBLISHED)
    assert b"".join((published / b.name).read_bytes() for b in result.blocks) == compressed


def test_multi_stream_bzip2_is_made_single_stream(
    spool: PeerSpool, ledger: Ledger, compressor: Compressor
) -> None:
    parts = [f1_text(500, seed=s) for s in range(3)]
    drop(spool, "F1_0086_20240101_20240102.2.bz2", b"".join(bz2.compress(p) for p in parts))
    [result] = make_publisher(spool, ledger, compressor).publish_pending()
    assert result.published_name == "F1_0086_20240101_20240102.2.bz2"
    data = (spool.dir(SpoolState.PUBLISHED) / result.published_name).read_bytes()
    assert single_stream(data) and bz2.decompress(data) == b"".join(parts)


def test_type_from_subfolder_wins_over_prefix(
    spool: PeerSpool, ledger: Ledger, compressor: Compressor
) -> None:
    drop(spool, "INC/F1_0086_20240101_20240102.0", b"a;b\n")
    drop(spool, "cur/no_prefix_here.txt", b"c;d\n")  # folder names are case-insensitive
    drop(spool, "INV/deeper/ignored.txt", b"deeper folders carry no meaning\n")
    results = make_publisher(spool, ledger, compressor).publish_pending()
    by_name = {r.original_name: r.file_type for r in results}
    assert by_name == {"F1_0086_20240101_20240102.0": "INC", "no_prefix_here.txt": "CUR"}
    assert ledger.lookup(PEER, "no_prefix_here.txt.bz2").file_type == "CUR"  # type: ignore[union-attr]
    assert (spool.dir(SpoolState.OUTBOX) / "INV/deeper/ignored.txt").exists()


def test_type_from_prefix(spool: PeerSpool, ledger: Ledger, compressor: Compressor) -> None:
    drop(spool, "F1_0086_20240101_20240102.0", b"x\n")
    [result] = make_publisher(spool, ledger, compressor).publish_pending()
    assert result.file_type == TypeClassifier().classify("F1_0086_20240101_20240102.0") == "CUR"


def test_unclassified_stays_with_one_warning(
    spool: PeerSpool, ledger: Ledger, compressor: Compressor, caplog: pytest.LogCaptureFixture
) -> None:
    drop(spool, "ZZ_0086_20240101.0", b"unknown prefix\n")
    drop(spool, "TOD/F1_0086_20240101_20240102.0", b"TOD is not a type\n")
    publisher = make_publisher(spool, ledger, compressor)
    with caplog.at_level(logging.WARNING, logger="concentrador.spool.outbound.publisher"):
        assert publisher.publish_pending() == []
        assert publisher.publish_pending() == []  # a second scan does not warn again
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 2
    notes = {n.path: n.reason for n in ledger.unclassified(PEER)}
    assert set(notes) == {"outbox/ZZ_0086_20240101.0", "outbox/TOD/F1_0086_20240101_20240102.0"}
    assert "prefix" in notes["outbox/ZZ_0086_20240101.0"]
    assert "not a file type" in notes["outbox/TOD/F1_0086_20240101_20240102.0"]
    assert (spool.dir(SpoolState.OUTBOX) / "ZZ_0086_20240101.0").exists()
    assert listing(spool.dir(SpoolState.PUBLISHED)) == []

    # Moving the file to a type folder publishes it and clears the note.
    os.rename(
        spool.dir(SpoolState.OUTBOX) / "ZZ_0086_20240101.0",
        drop(spool, "CUR/.keep", b"").parent / "ZZ_0086_20240101.0",
    )
    [result] = publisher.publish_pending()
    assert result.published_name == "ZZ_0086_20240101.0.bz2"
    assert [n.path for n in ledger.unclassified(PEER)] == ["outbox/TOD/F1_0086_20240101_20240102.0"]


def test_push_peer_goes_to_sending(
    spool: PeerSpool, ledger: Ledger, compressor: Compressor
) -> None:
    drop(spool, "F1_0086_20240101_20240102.0", b"push me\n")
    [result] = make_publisher(spool, ledger, compressor, deliver="push").publish_pending()
    assert result.state == SpoolState.SENDING
    assert listing(spool.dir(SpoolState.SENDING)) == ["F1_0086_20240101_20240102.0.bz2"]
    assert listing(spool.dir(SpoolState.PUBLISHED)) == []
    assert [e.name for e in ledger.entries_for(PEER, "sending")] == [
        "F1_0086_20240101_20240102.0.bz2"
    ]


def test_files_being_written_are_left_alone(
    spool: PeerSpool, ledger: Ledger, compressor: Compressor
) -> None:
    for name in (".F1_0086_x.0.abc123", "F1_0086_x.0.tmp", "F1_0086_x.0.part"):
        drop(spool, name, b"half written")
    publisher = make_publisher(spool, ledger, compressor, settle_seconds=3600)
    drop(spool, "F1_0086_20240101_20240102.0", b"complete but not settled\n")
    assert publisher.publish_pending() == []
    assert publisher.publish_file(spool.dir(SpoolState.OUTBOX) / "F1_0086_x.0.tmp") is None
    assert listing(spool.dir(SpoolState.PUBLISHED)) == []
    assert ledger.unclassified(PEER) == []


def test_settle_tracker_needs_an_unchanged_file() -> None:
    now = [100.0]
    tracker = SettleTracker(2.0, clock=lambda: now[0])
    seen = OutboxFile(Path("/o/F1_a"), "F1_a", None, 10, 1, 7)
    assert not tracker.is_settled(seen)  # first sighting starts the clock
    now[0] += 1.9
    assert not tracker.is_settled(seen)
    grown = OutboxFile(Path("/o/F1_a"), "F1_a", None, 20, 2, 7)
    now[0] += 1.0
    assert not tracker.is_settled(grown)  # it changed: the clock restarts
    now[0] += 2.0
    assert tracker.is_settled(grown)


def test_same_name_twice_is_refused(
    spool: PeerSpool, ledger: Ledger, compressor: Compressor
) -> None:
    publisher = make_publisher(spool, ledger, compressor)
    drop(spool, "F1_0086_20240101_20240102.0", b"first\n")
    assert len(publisher.publish_pending()) == 1
    drop(spool, "F1_0086_20240101_20240102.0", b"second, same name\n")
    assert publisher.publish_pending() == []
    [note] = ledger.unclassified(PEER)
    assert "already published" in note.reason
    data = (spool.dir(SpoolState.PUBLISHED) / "F1_0086_20240101_20240102.0.bz2").read_bytes()
    assert bz2.decompress(data) == b"first\n"


def test_block_like_and_corrupt_names_are_refused(
    spool: PeerSpool, ledger: Ledger, compressor: Compressor
) -> None:
    drop(spool, "F1_0086_20240101.0.1_3", bz2.compress(b"looks like a block"))
    drop(spool, "F1_0086_20240102.0.bz2", b"BZh9" + bytes(100))  # bzip2 magic, garbage body
    assert make_publisher(spool, ledger, compressor).publish_pending() == []
    reasons = {n.path: n.reason for n in ledger.unclassified(PEER)}
    assert "block 1 of 3" in reasons["outbox/F1_0086_20240101.0.1_3"]
    assert "not a valid bzip2" in reasons["outbox/F1_0086_20240102.0.bz2"]


def test_publish_file_directly(spool: PeerSpool, ledger: Ledger, compressor: Compressor) -> None:
    path = drop(spool, "CUR/F1_0086_20240101_20240102.0", b"x;y\n")
    result = make_publisher(spool, ledger, compressor).publish_file(path)
    assert result is not None and result.file_type == "CUR"
    assert not path.exists()
    assert (spool.dir(SpoolState.ARCHIVE) / path.name).read_bytes() == b"x;y\n"


def test_batch_in_parallel(spool: PeerSpool, ledger: Ledger, compressor: Compressor) -> None:
    texts = {f"F1_0086_2024010{i}_2024010{i}.0": f1_text(4000, seed=i) for i in range(1, 7)}
    for name, text in texts.items():
        drop(spool, name, text)
    results = make_publisher(spool, ledger, compressor).publish_pending()
    assert sorted(r.original_name for r in results) == sorted(texts)
    published = spool.dir(SpoolState.PUBLISHED)
    for name, text in texts.items():
        assert bz2.decompress((published / f"{name}.bz2").read_bytes()) == text


def test_archive_never_overwrites(spool: PeerSpool, ledger: Ledger, compressor: Compressor) -> None:
    (spool.dir(SpoolState.ARCHIVE) / "F1_0086_20240101_20240102.0").write_bytes(b"older")
    drop(spool, "F1_0086_20240101_20240102.0", b"newer\n")
    assert len(make_publisher(spool, ledger, compressor).publish_pending()) == 1
    contents = sorted(p.read_bytes() for p in spool.dir(SpoolState.ARCHIVE).iterdir())
    assert contents == [b"newer\n", b"older"]


def test_bad_configuration(spool: PeerSpool, ledger: Ledger, compressor: Compressor) -> None:
    with pytest.raises(ValueError, match="deliver"):
        make_publisher(spool, ledger, compressor, deliver="pull")
    with pytest.raises(Exception, match="block size"):
        make_publisher(spool, ledger, compressor, block_size=1000)

"""Block sets whose siblings never arrive leave ``partial/`` for ``failed/``."""

from __future__ import annotations

import bz2
import logging
import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from concentrador.config.model import Config, NodeConfig, PeerConfig, ServerConfig
from concentrador.daemon.services import SpoolServices
from concentrador.spool.inbound.reassembly import Reassembler, _missing_ranges
from concentrador.spool.layout import PeerSpool, SpoolState
from concentrador.spool.ledger import Ledger

NOW = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)
WINDOW = timedelta(days=30)
# Compressible but not trivially: a few KB of bzip2 to cut into blocks.
DATA = bz2.compress(b"".join(b"%08d;line of a P.O. 10.11 file\n" % i for i in range(5000)))
ORIGINAL = "P1_20031120.1.bz2"


def pieces(data: bytes, n: int) -> list[bytes]:
    size = -(-len(data) // n)
    return [data[i * size : (i + 1) * size] for i in range(n)]


def drop(
    peer: PeerSpool, indexes: list[int], n: int, *, age: timedelta, original: str = ORIGINAL
) -> None:
    """Put blocks ``indexes`` of an ``n``-block cut in partial/, last modified ``age`` ago."""
    parts = pieces(DATA, n)
    moment = (NOW - age).timestamp()
    for k in indexes:
        path = peer.dir(SpoolState.PARTIAL) / f"{original}.{k}_{n}"
        path.write_bytes(parts[k - 1])
        os.utime(path, (moment, moment))


def names(peer: PeerSpool, state: SpoolState) -> list[str]:
    return sorted(p.name for p in peer.dir(state).iterdir())


@pytest.fixture
def reassembler(tmp_path: Path, peer: PeerSpool) -> Iterator[Reassembler]:
    ledger = Ledger(tmp_path / "ledger.sqlite3")
    yield Reassembler(peer, ledger, decompress=False)
    ledger.close()


def test_old_incomplete_set_is_escalated_with_reasons(
    peer: PeerSpool, reassembler: Reassembler, caplog: pytest.LogCaptureFixture
) -> None:
    drop(peer, [1, 2], 3, age=timedelta(days=31, hours=2))
    with caplog.at_level(logging.ERROR):
        expired = reassembler.expire_incomplete(now=NOW, max_age=WINDOW)
    assert expired == [ORIGINAL]
    assert names(peer, SpoolState.PARTIAL) == []
    blocks = [f"{ORIGINAL}.1_3", f"{ORIGINAL}.2_3"]
    assert names(peer, SpoolState.FAILED) == sorted(blocks + [b + ".reason" for b in blocks])
    for k, name in enumerate(blocks, start=1):
        # Moved, not rewritten: the bytes the peer sent are all still there.
        assert (peer.dir(SpoolState.FAILED) / name).read_bytes() == pieces(DATA, 3)[k - 1]
        reason = (peer.dir(SpoolState.FAILED) / f"{name}.reason").read_text()
        assert reason.count("\n") == 1
        assert "incomplete block set: 2 of 3 blocks (missing 3) arrived" in reason
        assert "none for 31 days" in reason
        assert "2024-03-01T12:00:00Z" in reason
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1 and ORIGINAL in errors[0].getMessage()


def test_recent_incomplete_set_is_kept(peer: PeerSpool, reassembler: Reassembler) -> None:
    drop(peer, [2], 3, age=timedelta(days=29, hours=23))
    assert reassembler.expire_incomplete(now=NOW, max_age=WINDOW) == []
    assert names(peer, SpoolState.PARTIAL) == [f"{ORIGINAL}.2_3"]
    assert names(peer, SpoolState.FAILED) == []


def test_newest_block_counts(peer: PeerSpool, reassembler: Reassembler) -> None:
    drop(peer, [1], 3, age=timedelta(days=90))
    drop(peer, [3], 3, age=timedelta(days=2))
    assert reassembler.expire_incomplete(now=NOW, max_age=WINDOW) == []
    assert names(peer, SpoolState.PARTIAL) == [f"{ORIGINAL}.1_3", f"{ORIGINAL}.3_3"]
    # Once the newest one is past the window too, the whole set goes.
    later = NOW + timedelta(days=29)
    assert reassembler.expire_incomplete(now=later, max_age=WINDOW) == [ORIGINAL]
    assert names(peer, SpoolState.PARTIAL) == []
    reason = (peer.dir(SpoolState.FAILED) / f"{ORIGINAL}.1_3.reason").read_text()
    assert (
        "1 of 3" not in reason and "2 of 3 blocks (missing 2) arrived, none for 31 days" in reason
    )


def test_complete_old_set_is_not_expired(peer: PeerSpool, reassembler: Reassembler) -> None:
    drop(peer, [1, 2, 3], 3, age=timedelta(days=400))
    assert reassembler.expire_incomplete(now=NOW, max_age=WINDOW) == []
    assert len(names(peer, SpoolState.PARTIAL)) == 3
    assert names(peer, SpoolState.FAILED) == []


def test_second_run_is_a_no_op(peer: PeerSpool, reassembler: Reassembler) -> None:
    drop(peer, [1, 3], 4, age=timedelta(days=45))
    assert reassembler.expire_incomplete(now=NOW, max_age=WINDOW) == [ORIGINAL]
    failed_before = {p.name: p.read_bytes() for p in peer.dir(SpoolState.FAILED).iterdir()}
    assert len(failed_before) == 4
    assert reassembler.expire_incomplete(now=NOW, max_age=WINDOW) == []
    failed_after = {p.name: p.read_bytes() for p in peer.dir(SpoolState.FAILED).iterdir()}
    assert failed_after == failed_before
    assert "2 of 4 blocks (missing 2, 4)" in failed_before[f"{ORIGINAL}.1_4.reason"].decode()


def test_each_cut_of_a_file_ages_on_its_own(peer: PeerSpool, reassembler: Reassembler) -> None:
    # An old 3-block cut can never be completed by blocks of a newer 2-block
    # cut (different block size), so the newer one does not keep it alive.
    drop(peer, [1], 3, age=timedelta(days=60))
    drop(peer, [1], 2, age=timedelta(days=1))
    other = "P2_20031120.2.bz2"
    drop(peer, [2], 5, age=timedelta(days=10), original=other)
    assert reassembler.expire_incomplete(now=NOW, max_age=WINDOW) == [ORIGINAL]
    assert names(peer, SpoolState.PARTIAL) == [f"{ORIGINAL}.1_2", f"{other}.2_5"]
    assert names(peer, SpoolState.FAILED) == [f"{ORIGINAL}.1_3", f"{ORIGINAL}.1_3.reason"]


def test_escalation_never_overwrites_an_earlier_one(
    peer: PeerSpool, reassembler: Reassembler
) -> None:
    drop(peer, [2], 3, age=timedelta(days=40))
    assert reassembler.expire_incomplete(now=NOW, max_age=WINDOW) == [ORIGINAL]
    # The peer re-sends the same block, which again never gets its siblings.
    drop(peer, [2], 3, age=timedelta(days=40))
    later = NOW + timedelta(hours=1)
    assert reassembler.expire_incomplete(now=later, max_age=WINDOW) == [ORIGINAL]
    failed = names(peer, SpoolState.FAILED)
    assert len(failed) == 4
    assert f"{ORIGINAL}.2_3" in failed and f"{ORIGINAL}.2_3.reason" in failed


def test_rejects_naive_now_and_negative_age(reassembler: Reassembler) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        reassembler.expire_incomplete(now=datetime(2024, 3, 1), max_age=WINDOW)
    with pytest.raises(ValueError, match="negative"):
        reassembler.expire_incomplete(now=NOW, max_age=timedelta(days=-1))


@given(st.integers(2, 60).flatmap(lambda n: st.tuples(st.just(n), st.sets(st.integers(1, n)))))
def test_missing_ranges_name_exactly_the_missing_indexes(case: tuple[int, set[int]]) -> None:
    count, present = case
    text = _missing_ranges(present, count)
    named: list[int] = []
    for part in filter(None, text.split(", ")):
        first, _, last = part.partition("-")
        named.extend(range(int(first), int(last or first) + 1))
    assert named == sorted(set(range(1, count + 1)) - present)


# -- the daemon's periodic pass ----------------------------------------------------
def test_expiry_pass_rebuilds_complete_sets_then_expires_incomplete_ones(tmp_path: Path) -> None:
    config = Config(
        path=tmp_path / "concentrador.toml",
        node=NodeConfig(
            id="0086", spool=tmp_path / "spool", timezone=ZoneInfo("Europe/Madrid"), publish_days=30
        ),
        server=ServerConfig(
            host="127.0.0.1", port=0, cert=None, key=None, client_ca=None, insecure_http=True
        ),
        client=None,
        peers=(PeerConfig(id="CREC"),),
    )
    services = SpoolServices(config, settle_seconds=0)
    try:
        peer = services.spool.peer("CREC")
        now = datetime.now(UTC)
        complete, stale, fresh = "P1_A.1.bz2", "P1_B.1.bz2", "P1_C.1.bz2"
        for original, indexes, days in [(complete, [1, 2, 3], 400), (stale, [1, 3], 31)]:
            parts = pieces(DATA, 3)
            for k in indexes:
                path = peer.dir(SpoolState.PARTIAL) / f"{original}.{k}_3"
                path.write_bytes(parts[k - 1])
                moment = (now - timedelta(days=days)).timestamp()
                os.utime(path, (moment, moment))
        (peer.dir(SpoolState.PARTIAL) / f"{fresh}.1_3").write_bytes(pieces(DATA, 3)[0])

        services.expiry_pass()

        # The old but complete set was rebuilt, not escalated.
        assert (peer.dir(SpoolState.INBOX) / complete).read_bytes() == DATA
        assert names(peer, SpoolState.ARCHIVE) == [f"{complete}.{k}_3" for k in (1, 2, 3)]
        assert names(peer, SpoolState.FAILED) == sorted(
            [f"{stale}.1_3", f"{stale}.1_3.reason", f"{stale}.3_3", f"{stale}.3_3.reason"]
        )
        assert names(peer, SpoolState.PARTIAL) == [f"{fresh}.1_3"]
    finally:
        services.close()

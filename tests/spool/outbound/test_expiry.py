from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from concentrador.spool import durable
from concentrador.spool.layout import PeerSpool, SpoolState
from concentrador.spool.ledger import Ledger, PublishedEntry
from concentrador.spool.outbound.expiry import expire_published, finish_deliveries

NOW = datetime(2024, 6, 10, 12, 0, tzinfo=UTC)


def publish(peer: PeerSpool, ledger: Ledger, original: str, n: int, at: datetime) -> list[str]:
    names = [original] if n == 1 else [f"{original}.{k}_{n}" for k in range(1, n + 1)]
    for name in names:
        (peer.dir("published") / name).write_bytes(name.encode())
    ledger.record_published(
        PublishedEntry("PEER", name, original, "CUR", len(name), "0" * 32, at) for name in names
    )
    return names


def listing(peer: PeerSpool, state: str) -> list[str]:
    return sorted(p.name for p in peer.dir(state).iterdir())


def test_expires_old_files_with_all_their_blocks(peer: PeerSpool, ledger: Ledger) -> None:
    old_blocks = publish(peer, ledger, "OLD.bz2", 3, NOW - timedelta(days=8))
    publish(peer, ledger, "FRESH.bz2", 1, NOW - timedelta(days=6))
    publish(peer, ledger, "DONE.bz2", 1, NOW - timedelta(days=30))
    ledger.set_state("PEER", "DONE.bz2", SpoolState.DELIVERED)

    assert expire_published(peer, ledger, now=NOW, publish_days=7) == ["OLD.bz2"]
    assert listing(peer, "expired") == old_blocks
    # DONE was confirmed (ledger) but its move was cut short: finished now.
    assert listing(peer, "published") == ["FRESH.bz2"]
    assert listing(peer, "delivered") == ["DONE.bz2"]
    assert {e.state for e in ledger.entries_of("PEER", "OLD.bz2")} == {"expired"}
    assert [e.name for e in ledger.entries_for("PEER")] == ["FRESH.bz2"]
    assert ledger.lookup("PEER", "DONE.bz2").state == "delivered"  # type: ignore[union-attr]
    # Idempotent.
    assert expire_published(peer, ledger, now=NOW, publish_days=7) == []
    assert listing(peer, "expired") == old_blocks


def test_window_boundary(peer: PeerSpool, ledger: Ledger) -> None:
    publish(peer, ledger, "EDGE", 1, NOW - timedelta(days=7))
    assert expire_published(peer, ledger, now=NOW, publish_days=7) == []
    later = NOW + timedelta(microseconds=1)
    assert expire_published(peer, ledger, now=later, publish_days=7) == ["EDGE"]


def test_crash_between_moves_then_rerun_finishes(
    peer: PeerSpool, ledger: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    names = publish(peer, ledger, "OLD.bz2", 3, NOW - timedelta(days=8))
    real_move = durable.durable_move
    calls = 0

    def crashing_move(src: Path, dst_dir: Path, name: str | None = None) -> Path:
        nonlocal calls
        calls += 1
        if calls == 2:
            raise RuntimeError("power cut")
        return real_move(src, dst_dir, name)

    monkeypatch.setattr("concentrador.spool.outbound.expiry.durable_move", crashing_move)
    with pytest.raises(RuntimeError):
        expire_published(peer, ledger, now=NOW, publish_days=7)
    assert listing(peer, "expired") == names[:1]
    assert [e.name for e in ledger.entries_for("PEER")] == names  # still listed
    monkeypatch.undo()

    assert expire_published(peer, ledger, now=NOW, publish_days=7) == ["OLD.bz2"]
    assert listing(peer, "expired") == names
    assert listing(peer, "published") == []
    assert ledger.entries_for("PEER") == []


def test_a_previous_expiry_of_the_same_name_is_kept(peer: PeerSpool, ledger: Ledger) -> None:
    (peer.dir("expired") / "F.bz2").write_bytes(b"the older publication")
    publish(peer, ledger, "F.bz2", 1, NOW - timedelta(days=8))
    assert expire_published(peer, ledger, now=NOW, publish_days=7) == ["F.bz2"]
    files = listing(peer, "expired")
    assert len(files) == 2 and files[0] == "F.bz2" and files[1].startswith("F.bz2.")
    assert (peer.dir("expired") / "F.bz2").read_bytes() == b"the older publication"


def test_naive_now_is_refused(peer: PeerSpool, ledger: Ledger) -> None:
    with pytest.raises(ValueError):
        expire_published(peer, ledger, now=datetime(2024, 1, 1), publish_days=7)


def test_a_confirmation_cut_before_its_moves_is_finished(peer: PeerSpool, ledger: Ledger) -> None:
    """kill -9 between the confirmation's ledger commit and its moves: the files
    stay in published/, no longer listed; the next pass moves them on."""
    blocks = publish(peer, ledger, "CUT.bz2", 2, NOW)
    publish(peer, ledger, "LIVE.bz2", 1, NOW)
    ledger.set_state("PEER", "CUT.bz2", SpoolState.DELIVERED)
    (peer.dir("published") / "NO_ROW.bz2").write_bytes(b"x")  # not ours to judge

    assert finish_deliveries(peer, ledger) == blocks
    assert listing(peer, "delivered") == blocks
    assert listing(peer, "published") == ["LIVE.bz2", "NO_ROW.bz2"]
    assert finish_deliveries(peer, ledger) == []  # idempotent

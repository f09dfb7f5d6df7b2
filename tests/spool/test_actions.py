"""Operator actions (spool/actions.py): each moves what it must and writes the trail."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from concentrador.spool.actions import ActionRefused, mark_reviewed, republish, retry_push
from concentrador.spool.aside import move_with_reason
from concentrador.spool.layout import Spool, SpoolState
from concentrador.spool.ledger import EventKind, Ledger, PublishedEntry
from concentrador.spool.outbound.expiry import expire_published

T0 = datetime(2024, 3, 1, tzinfo=UTC)
PEER = "CREC"


@pytest.fixture
def spool(tmp_path: Path) -> Spool:
    spool = Spool(tmp_path / "spool")
    spool.ensure([PEER])
    return spool


def publish(spool: Spool, ledger: Ledger, original: str, n: int, state: SpoolState) -> list[str]:
    folder = spool.peer(PEER).dir(state)
    entries = []
    for k in range(1, n + 1):
        name = f"{original}.{k}_{n}" if n > 1 else original
        data = f"{name} data".encode()
        (folder / name).write_bytes(data)
        md5 = hashlib.md5(data).hexdigest()
        entries.append(PublishedEntry(PEER, name, original, "CUR", len(data), md5, T0, state))
    ledger.record_published(entries)
    return [e.name for e in entries]


def last_event(ledger: Ledger, name: str) -> tuple[str, str, str | None]:
    event = ledger.events_for(PEER, name)[-1]
    return event.kind, event.detail, event.actor


def test_retry_push_moves_a_failed_push_back_and_says_who(spool: Spool, ledger: Ledger) -> None:
    names = publish(spool, ledger, "P1.bz2", 2, SpoolState.SENDING)
    peer = spool.peer(PEER)
    for name in names:
        source = peer.dir(SpoolState.SENDING) / name
        move_with_reason(source, peer.dir(SpoolState.FAILED), peer.work_dir, "push of P1.bz2")
    ledger.set_state(PEER, "P1.bz2", "failed", detail="codigo 5")
    ledger.record_push_attempt(PEER, "P1.bz2", error="codigo 5", next_attempt_at=None)

    moved = retry_push(
        spool, ledger, PEER, "P1.bz2.2_2", actor="admin@127.0.0.1", reason="peer fixed"
    )

    assert sorted(p.name for p in moved) == names
    assert [p.name for p in peer.files(SpoolState.SENDING)] == names
    assert peer.files(SpoolState.FAILED) == []  # .reason files went to archive/
    assert {e.state for e in ledger.entries_of(PEER, "P1.bz2")} == {"sending"}
    assert ledger.push_state(PEER, "P1.bz2") is None
    assert last_event(ledger, "P1.bz2") == (EventKind.RETRIED, "peer fixed", "admin@127.0.0.1")
    with pytest.raises(ActionRefused, match="no failed file"):
        retry_push(spool, ledger, PEER, "P1.bz2", actor="cli", reason="")


def test_retry_push_refuses_what_we_did_not_push(spool: Spool, ledger: Ledger) -> None:
    (spool.peer(PEER).dir(SpoolState.FAILED) / "R.bz2.1_2").write_bytes(b"theirs")
    with pytest.raises(ActionRefused, match="not a file we pushed"):
        retry_push(spool, ledger, PEER, "R.bz2", actor="cli", reason="")
    assert ledger.events_for(PEER, "R.bz2") == []


def test_republish_an_expired_file_opens_a_new_window(spool: Spool, ledger: Ledger) -> None:
    names = publish(spool, ledger, "F1.bz2", 3, SpoolState.PUBLISHED)
    peer = spool.peer(PEER)
    assert expire_published(peer, ledger, now=T0 + timedelta(days=40), publish_days=30)
    assert [p.name for p in peer.files(SpoolState.EXPIRED)] == names
    again = T0 + timedelta(days=41)

    moved = republish(spool, ledger, PEER, "F1.bz2", actor="cli:ana", reason="asked", now=again)

    assert [p.name for p in moved] == names
    assert [p.name for p in peer.files(SpoolState.PUBLISHED)] == names
    assert peer.files(SpoolState.EXPIRED) == []
    entries = ledger.entries_of(PEER, "F1.bz2")
    assert {(e.state, e.published_at) for e in entries} == {("published", again)}
    kinds = [e.kind for e in ledger.events_for(PEER, "F1.bz2")]
    assert kinds == [EventKind.PUBLISHED, EventKind.EXPIRED, EventKind.REPUBLISHED]
    assert last_event(ledger, "F1.bz2") == (EventKind.REPUBLISHED, "asked", "cli:ana")
    # Not expired any more (and not within the old window's expiry either).
    assert expire_published(peer, ledger, now=again + timedelta(days=1), publish_days=30) == []
    with pytest.raises(ActionRefused, match="not expired"):
        republish(spool, ledger, PEER, "F1.bz2", actor="cli", reason="")
    with pytest.raises(ActionRefused, match="never published"):
        republish(spool, ledger, PEER, "nope.bz2", actor="cli", reason="")


def test_republish_refuses_to_overwrite(spool: Spool, ledger: Ledger) -> None:
    publish(spool, ledger, "F2.bz2", 1, SpoolState.PUBLISHED)
    peer = spool.peer(PEER)
    expire_published(peer, ledger, now=T0 + timedelta(days=40), publish_days=30)
    (peer.dir(SpoolState.PUBLISHED) / "F2.bz2").write_bytes(b"someone else's")
    with pytest.raises(ActionRefused, match="exists already"):
        republish(spool, ledger, PEER, "F2.bz2", actor="cli", reason="")
    assert {e.state for e in ledger.entries_of(PEER, "F2.bz2")} == {"expired"}


def test_mark_reviewed_writes_the_actor_and_reason(
    spool: Spool, ledger: Ledger, tmp_path: Path
) -> None:
    ledger.record_received(PEER, "IN.bz2", "a" * 32, 3, tmp_path / "inbox" / "IN.bz2")
    mark_reviewed(spool, ledger, PEER, "IN.bz2", actor="admin@10.1.1.1", reason="looks fine")
    assert last_event(ledger, "IN.bz2") == (EventKind.REVIEWED, "looks fine", "admin@10.1.1.1")
    assert ledger.search_files(peer=PEER).rows[0].reviewed
    with pytest.raises(ActionRefused, match="no file"):
        mark_reviewed(spool, ledger, PEER, "unknown.bz2", actor="cli", reason="")
    with pytest.raises(ValueError, match="actor"):
        mark_reviewed(spool, ledger, PEER, "IN.bz2", actor=" ", reason="")

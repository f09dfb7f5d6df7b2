"""What replicas on one shared spool race on: storing the same file, and rebuilding a set.

The per-peer lock (``spool/locks.py``) is a host's; another replica can store
the same block or file between our check and our commit, and a rebuild must
hold the peer's ``rebuild`` claim, wherever it is asked for.
"""

from __future__ import annotations

import asyncio
import bz2
import random
from collections.abc import Iterator
from pathlib import Path

import pytest

from concentrador.config.model import PeerConfig
from concentrador.spool.claims import LocalClaims, open_claims
from concentrador.spool.durable import DurableWriter
from concentrador.spool.inbound import rebuilds
from concentrador.spool.inbound.rebuilds import LocalRebuilds
from concentrador.spool.inbound.store import InboundStore
from concentrador.spool.layout import PeerSpool, Spool, SpoolState
from concentrador.spool.ledger import EventKind, Ledger

DATA = bz2.compress(random.Random(12).randbytes(50_000))
PEERS = {"CREC": PeerConfig(id="CREC")}


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[Ledger]:
    (tmp_path / "spool").mkdir()
    with Ledger(tmp_path / "spool" / "ledger.sqlite3") as ledger:
        yield ledger


def other_replica_commits_first(writer: DurableWriter, content: bytes) -> None:
    """Make ``writer.commit`` find its target taken, as if another host won the race."""
    commit = writer.commit

    def racing(final_path: Path, **kwargs: bool) -> Path:
        final_path.write_bytes(content)
        return commit(final_path, **kwargs)

    writer.commit = racing  # type: ignore[method-assign]


def commit_raced(store: InboundStore, name: str, ours: bytes, theirs: bytes) -> Path:
    """Store ``ours`` as ``name`` while another replica commits ``theirs`` first."""
    with store.open(name, manual=False) as writer:
        writer.write(ours)
        other_replica_commits_first(writer, theirs)
        return store.commit(writer, name)


@pytest.fixture
def peer(tmp_path: Path, ledger: Ledger) -> PeerSpool:
    """Replica r1's view of CREC's folders on the shared spool (made after the ledger's)."""
    return Spool(tmp_path / "spool", replica="r1").peer("CREC").ensure()


@pytest.fixture
def store(peer: PeerSpool, ledger: Ledger) -> InboundStore:
    return InboundStore(peer, ledger, decompress=False)


def kinds(ledger: Ledger, name: str) -> list[EventKind]:
    return [event.kind for event in ledger.events_for("CREC", name)]


def test_a_block_stored_meanwhile_by_another_replica_is_a_duplicate(
    peer: PeerSpool, store: InboundStore
) -> None:
    path = commit_raced(store, "F.0.bz2.1_2", DATA[:100], DATA[:100])
    assert path == peer.dir(SpoolState.PARTIAL) / "F.0.bz2.1_2"
    assert not list(peer.work_dir.iterdir())  # our temp is gone
    with pytest.raises(FileExistsError):  # different bytes: refused, never replaced
        commit_raced(store, "F.0.bz2.2_2", DATA[100:], b"something else")
    assert (peer.dir(SpoolState.PARTIAL) / "F.0.bz2.2_2").read_bytes() == b"something else"


def test_a_file_stored_meanwhile_by_another_replica_is_recorded_once(
    peer: PeerSpool, store: InboundStore, ledger: Ledger
) -> None:
    path = commit_raced(store, "F1.0.bz2", DATA, DATA)
    assert path == peer.dir(SpoolState.INBOX) / "F1.0.bz2"
    assert path.read_bytes() == DATA
    entry = ledger.received("CREC", "F1.0.bz2")
    assert entry is not None and entry.size == len(DATA)


def store_set(peer: PeerSpool, ledger: Ledger, original: str) -> None:
    store = InboundStore(peer, ledger, decompress=False)
    cut = len(DATA) // 2
    for k, piece in [(1, DATA[:cut]), (2, DATA[cut:])]:
        with store.open(f"{original}.{k}_2", manual=False) as writer:
            writer.write(piece)
            store.commit(writer, f"{original}.{k}_2")


def test_local_rebuilds_hold_the_rebuild_claim(
    tmp_path: Path, ledger: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(rebuilds, "BUSY_RETRY_SECONDS", 0.05)
    spool = Spool(tmp_path / "spool")
    peer = spool.peer("CREC").ensure()
    store_set(peer, ledger, "F2.0.bz2")
    local = LocalRebuilds(spool, ledger, PEERS.get, busy_timeout=0.3)
    with LocalClaims(spool, replica="daemon").hold("CREC", "rebuild"):
        # The daemon (or another replica) is rebuilding: we wait, then give up.
        assert local.rebuild_now("CREC", "F2.0.bz2") is None
    assert len(peer.files(SpoolState.PARTIAL)) == 2
    stored = local.rebuild_now("CREC", "F2.0.bz2")
    assert stored == peer.dir(SpoolState.INBOX) / "F2.0.bz2"
    assert stored.read_bytes() == DATA
    (cycle,) = ledger.cycles("CREC", "rebuild")  # in the cycle log, like the daemon's
    assert cycle.result == "ok" and cycle.ended_at is not None


async def test_local_rebuilds_wait_for_a_claim_released_meanwhile(
    tmp_path: Path, ledger: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(rebuilds, "BUSY_RETRY_SECONDS", 0.05)
    spool = Spool(tmp_path / "spool")
    peer = spool.peer("CREC").ensure()
    store_set(peer, ledger, "F3.0.bz2")
    claims = open_claims(spool)
    local = LocalRebuilds(spool, ledger, PEERS.get, claims=claims)
    held = LocalClaims(spool, replica="daemon").hold("CREC", "rebuild")
    held.__enter__()
    asyncio.get_running_loop().call_later(0.3, held.__exit__, None, None, None)
    await local("CREC", "F3.0.bz2")
    assert (peer.dir(SpoolState.INBOX) / "F3.0.bz2").read_bytes() == DATA


def test_local_rebuilds_on_postgresql_need_the_claims(tmp_path: Path) -> None:
    class PostgresLike:
        dialect = "postgresql"

    with pytest.raises(ValueError, match="needs its claims or its ledger_url"):
        LocalRebuilds(Spool(tmp_path), PostgresLike(), PEERS.get)  # type: ignore[arg-type]

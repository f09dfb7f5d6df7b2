"""confirmacionRecepcionFichero on the spool: the ledger commit first, then every
block renamed without a folder fsync, then the answer (a rename a power cut
undoes is finished by ``finish_deliveries``); a confirmation racing the expiry
job."""

from __future__ import annotations

import errno
import hashlib
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from concentrador.protocol.messages import (
    ConfirmacionRecepcionFichero,
    ConfirmacionRecepcionFicheroResponse,
    ConfirmationResult,
)
from concentrador.server.operations import confirmacion
from concentrador.server.operations.confirmacion import confirm_reception
from concentrador.server.operations.recoger import FileNotPublished, open_published_file
from concentrador.spool.durable import StorageError
from concentrador.spool.layout import PeerSpool, Spool, SpoolState
from concentrador.spool.ledger import Ledger, PublishedEntry
from concentrador.spool.locks import peer_lock
from concentrador.spool.outbound.expiry import expire_published, finish_deliveries
from tests.spool.syscalls import SyscallLog, record_syscalls

ORIGINAL = "P1_0086_20240101.0.bz2"
BLOCKS = [f"{ORIGINAL}.{k}_3" for k in (1, 2, 3)]


@pytest.fixture
def peer_spool(tmp_path: Path) -> PeerSpool:
    return Spool(tmp_path / "spool").peer("CREC").ensure()


def publish(ledger: Ledger, peer_spool: PeerSpool, names: list[str], original: str) -> None:
    folder = peer_spool.dir(SpoolState.PUBLISHED)
    entries = []
    for name in names:
        data = name.encode()
        (folder / name).write_bytes(data)
        entries.append(
            PublishedEntry(
                "CREC",
                name,
                original,
                "CUR",
                len(data),
                hashlib.md5(data).hexdigest(),
                datetime(2024, 1, 15, tzinfo=UTC),
            )
        )
    ledger.record_published(entries)


def record_answers(monkeypatch: pytest.MonkeyPatch, calls: SyscallLog) -> None:
    """Log the moment the answer is built into the same call log."""
    real = confirmacion._answer

    def answer(result: ConfirmationResult) -> ConfirmacionRecepcionFicheroResponse:
        calls.note("answer", str(int(result)))
        return real(result)

    monkeypatch.setattr(confirmacion, "_answer", answer)


def record_commits(monkeypatch: pytest.MonkeyPatch, ledger: Ledger, calls: SyscallLog) -> None:
    """Log the ledger's delivery transaction (once committed) into the same call log."""
    real = ledger.deliver

    def deliver(peer: str, originals: list[str], detail: str) -> dict[str, list[str]]:
        accepted = real(peer, originals, detail)
        calls.note("commit", ",".join(accepted))
        return accepted

    monkeypatch.setattr(ledger, "deliver", deliver)


def test_split_file_commits_then_renames_every_block_then_answers(
    ledger: Ledger, peer_spool: PeerSpool, monkeypatch: pytest.MonkeyPatch
) -> None:
    publish(ledger, peer_spool, BLOCKS, ORIGINAL)
    delivered = peer_spool.dir(SpoolState.DELIVERED)
    calls = record_syscalls(monkeypatch)
    record_answers(monkeypatch, calls)
    record_commits(monkeypatch, ledger, calls)

    answer = confirm_reception(ledger, peer_spool, ConfirmacionRecepcionFichero(ORIGINAL, 0))

    assert answer.codigo == 0
    # The durable ledger commit is the confirmation's commit point; the
    # renames need no folder fsync (see test_a_rename_undone_by_a_power_cut...).
    assert calls == [
        ("commit", ORIGINAL),
        *[("rename", str(delivered / name)) for name in BLOCKS],
        ("answer", "0"),
    ]
    assert sorted(p.name for p in delivered.iterdir()) == BLOCKS
    assert {e.state for e in ledger.entries_of("CREC", ORIGINAL)} == {"delivered"}
    assert [e.kind for e in ledger.events_for("CREC", ORIGINAL)][-1] == "delivered"


def test_a_rename_undone_by_a_power_cut_is_finished_by_finish_deliveries(
    ledger: Ledger, peer_spool: PeerSpool
) -> None:
    """The renames are not fsynced: a power cut may undo them after the answer.
    The file is then back in published/, marked delivered: not listed, not
    served, and moved on by finish_deliveries (daemon start, every expiry pass)."""
    publish(ledger, peer_spool, BLOCKS, ORIGINAL)
    published = peer_spool.dir(SpoolState.PUBLISHED)
    delivered = peer_spool.dir(SpoolState.DELIVERED)
    assert (
        confirm_reception(ledger, peer_spool, ConfirmacionRecepcionFichero(ORIGINAL, 0)).codigo == 0
    )
    for name in BLOCKS:  # what the lost renames leave on disk
        (delivered / name).rename(published / name)

    assert ledger.listing("CREC") == []
    for name in BLOCKS:
        with pytest.raises(FileNotPublished):
            open_published_file(ledger, peer_spool, name)
    assert finish_deliveries(peer_spool, ledger) == BLOCKS
    assert sorted(p.name for p in delivered.iterdir()) == BLOCKS
    assert list(published.iterdir()) == []
    assert [(delivered / n).read_bytes() for n in BLOCKS] == [n.encode() for n in BLOCKS]


def test_a_move_failing_after_the_commit_is_answered_0_and_finished_later(
    ledger: Ledger, peer_spool: PeerSpool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After the commit the confirmation has happened (the file is no longer
    served): a failed rename (ENOSPC growing delivered/) is logged, not
    answered as a fault the peer would retry into a 1; the move is retried."""
    publish(ledger, peer_spool, BLOCKS, ORIGINAL)
    published = peer_spool.dir(SpoolState.PUBLISHED)
    real = confirmacion.move_aside

    def full(src: Path, dst_dir: Path, **kwargs: bool) -> Path:
        if src.name == BLOCKS[1]:
            raise StorageError("move", src, OSError(errno.ENOSPC, "No space left on device"))
        return real(src, dst_dir, **kwargs)

    monkeypatch.setattr(confirmacion, "move_aside", full)
    answer = confirm_reception(ledger, peer_spool, ConfirmacionRecepcionFichero(ORIGINAL, 0))

    assert answer.codigo == 0
    assert [p.name for p in published.iterdir()] == [BLOCKS[1]]
    assert finish_deliveries(peer_spool, ledger) == [BLOCKS[1]]
    assert sorted(p.name for p in peer_spool.dir(SpoolState.DELIVERED).iterdir()) == BLOCKS


def test_a_block_already_gone_still_moves_the_others(
    ledger: Ledger, peer_spool: PeerSpool, monkeypatch: pytest.MonkeyPatch
) -> None:
    publish(ledger, peer_spool, BLOCKS, ORIGINAL)
    published = peer_spool.dir(SpoolState.PUBLISHED)
    delivered = peer_spool.dir(SpoolState.DELIVERED)
    (published / BLOCKS[1]).unlink()  # expired or moved by someone else meanwhile
    calls = record_syscalls(monkeypatch)
    record_answers(monkeypatch, calls)

    answer = confirm_reception(ledger, peer_spool, ConfirmacionRecepcionFichero(ORIGINAL, 0))

    assert answer.codigo == 0
    assert calls.fsyncs() == []
    assert calls[-1] == ("answer", "0")
    assert sorted(p.name for p in delivered.iterdir()) == [BLOCKS[0], BLOCKS[2]]


def test_name_clash_in_delivered_keeps_both(
    ledger: Ledger, peer_spool: PeerSpool, monkeypatch: pytest.MonkeyPatch
) -> None:
    whole = "F1_0086_20240101_20240102.0.bz2"
    publish(ledger, peer_spool, [whole], whole)
    delivered = peer_spool.dir(SpoolState.DELIVERED)
    (delivered / whole).write_bytes(b"an older file under the same name")
    calls = record_syscalls(monkeypatch)
    record_answers(monkeypatch, calls)

    answer = confirm_reception(ledger, peer_spool, ConfirmacionRecepcionFichero(whole, 0))

    assert answer.codigo == 0
    assert calls[-1] == ("answer", "0")
    assert len(list(delivered.iterdir())) == 2
    assert (delivered / whole).read_bytes() == b"an older file under the same name"


@pytest.mark.parametrize(
    ("name", "code"),
    [(BLOCKS[0], 0), ("P1_0086_20990101.0.bz2", 0), (ORIGINAL, 7), (BLOCKS[0], 1)],
)
def test_a_block_alone_an_unknown_name_or_a_meaningless_code_is_answered_1(
    ledger: Ledger, peer_spool: PeerSpool, name: str, code: int
) -> None:
    publish(ledger, peer_spool, BLOCKS, ORIGINAL)
    answer = confirm_reception(ledger, peer_spool, ConfirmacionRecepcionFichero(name, code))
    assert answer.codigo == 1
    assert {e.state for e in ledger.entries_of("CREC", ORIGINAL)} == {"published"}
    assert len(list(peer_spool.dir(SpoolState.PUBLISHED).iterdir())) == 3


@pytest.mark.parametrize("code", [1, 2])
def test_codes_1_and_2_move_nothing_and_sync_nothing(
    ledger: Ledger, peer_spool: PeerSpool, monkeypatch: pytest.MonkeyPatch, code: int
) -> None:
    publish(ledger, peer_spool, BLOCKS, ORIGINAL)
    calls = record_syscalls(monkeypatch)
    record_answers(monkeypatch, calls)
    answer = confirm_reception(ledger, peer_spool, ConfirmacionRecepcionFichero(ORIGINAL, code))
    assert answer.codigo == 0
    assert calls == [("answer", "0")]


def test_confirmation_racing_an_expiry_is_not_marked_delivered(
    ledger: Ledger, peer_spool: PeerSpool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The expiry job wins the peer lock between the confirmation's check and
    its update: the file is in expired/, so the ledger must say expired (and
    the peer hears 1), not "delivered" for a file that sits in expired/."""
    name = "F1_0086_20240101_20240102.0.bz2"
    published_at = datetime(2024, 1, 1, tzinfo=UTC)
    (peer_spool.dir(SpoolState.PUBLISHED) / name).write_bytes(b"BZh9data")
    entry = PublishedEntry(
        "CREC", name, name, "CUR", 8, hashlib.md5(b"BZh9data").hexdigest(), published_at
    )
    ledger.record_published([entry])

    def expiry_first(spool: PeerSpool):
        expire_published(spool, ledger, now=published_at + timedelta(days=30), publish_days=7)
        return peer_lock(spool)

    monkeypatch.setattr(confirmacion, "peer_lock", expiry_first)
    answer = confirm_reception(ledger, peer_spool, ConfirmacionRecepcionFichero(name, 0))

    assert answer.codigo == 1
    assert ledger.lookup("CREC", name).state == SpoolState.EXPIRED.value
    assert (peer_spool.dir(SpoolState.EXPIRED) / name).is_file()
    assert not (peer_spool.dir(SpoolState.DELIVERED) / name).exists()

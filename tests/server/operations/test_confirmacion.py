"""confirmacionRecepcionFichero on the spool: batched folder syncs (every block
is renamed without a sync, then ``delivered/`` and ``published/`` are fsynced
once each, and only then is the answer built) and a confirmation racing the
expiry job."""

from __future__ import annotations

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
from concentrador.spool.layout import PeerSpool, Spool, SpoolState
from concentrador.spool.ledger import Ledger, PublishedEntry
from concentrador.spool.locks import peer_lock
from concentrador.spool.outbound.expiry import expire_published
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


def test_split_file_moves_then_syncs_each_folder_once_before_answering(
    ledger: Ledger, peer_spool: PeerSpool, monkeypatch: pytest.MonkeyPatch
) -> None:
    publish(ledger, peer_spool, BLOCKS, ORIGINAL)
    published = peer_spool.dir(SpoolState.PUBLISHED)
    delivered = peer_spool.dir(SpoolState.DELIVERED)
    calls = record_syscalls(monkeypatch)
    record_answers(monkeypatch, calls)

    answer = confirm_reception(ledger, peer_spool, ConfirmacionRecepcionFichero(ORIGINAL, 0))

    assert answer.codigo == 0
    assert calls == [
        *[("rename", str(delivered / name)) for name in BLOCKS],
        ("fsync", str(delivered)),
        ("fsync", str(published)),
        ("answer", "0"),
    ]
    assert sorted(p.name for p in delivered.iterdir()) == BLOCKS
    assert {e.state for e in ledger.entries_of("CREC", ORIGINAL)} == {"delivered"}


def test_a_block_already_gone_still_syncs_the_moved_ones_before_answering(
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
    assert calls.fsyncs() == [str(delivered), str(published)]
    assert calls[-3:] == [("fsync", str(delivered)), ("fsync", str(published)), ("answer", "0")]
    assert sorted(p.name for p in delivered.iterdir()) == [BLOCKS[0], BLOCKS[2]]


def test_name_clash_in_delivered_keeps_both_and_syncs_once(
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
    assert calls.fsyncs() == [str(delivered), str(peer_spool.dir(SpoolState.PUBLISHED))]
    assert calls[-1] == ("answer", "0")
    assert len(list(delivered.iterdir())) == 2


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

"""Group commit of confirmations: code-0 confirmations that arrive together
(several connections) share one ledger transaction, and none is answered
before that commit is done."""

from __future__ import annotations

import sqlite3
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from concentrador.protocol.messages import ConfirmacionRecepcionFichero
from concentrador.server.operations import confirmacion
from concentrador.server.operations.confirmacion import confirm_reception
from concentrador.spool.layout import PeerSpool, Spool, SpoolState
from concentrador.spool.ledger import Ledger
from concentrador.spool.locks import peer_lock
from tests.server.operations.test_confirmacion import publish
from tests.spool.syscalls import record_syscalls

NAMES = [f"F1_0086_2024010{i}_2024010{i + 1}.0.bz2" for i in range(1, 4)]


@pytest.fixture
def peer_spool(tmp_path: Path) -> PeerSpool:
    return Spool(tmp_path / "spool").peer("CREC").ensure()


def wait_until_queued(peer_spool: PeerSpool, count: int) -> None:
    group = confirmacion._delivery_group(peer_spool)
    deadline = time.monotonic() + 10
    while len(group._queue) < count:
        assert time.monotonic() < deadline, "confirmations never queued"
        time.sleep(0.005)


def test_confirmations_arriving_together_share_one_commit(
    ledger: Ledger, peer_spool: PeerSpool, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in NAMES:
        publish(ledger, peer_spool, [name], name)
    transactions: list[list[str]] = []
    real = ledger.deliver

    def counted(peer: str, originals: list[str], detail: str) -> dict[str, list[str]]:
        transactions.append(list(originals))
        return real(peer, originals, detail)

    monkeypatch.setattr(ledger, "deliver", counted)
    calls = record_syscalls(monkeypatch)
    requests = [*NAMES, NAMES[0]]  # the last one confirms the first file a second time
    with ThreadPoolExecutor(len(requests)) as pool:
        # Another holder of the peer lock (the expiry job, a commit) keeps
        # them all waiting; the first to get the lock then commits them all.
        with peer_lock(peer_spool):
            futures = [
                pool.submit(
                    confirm_reception, ledger, peer_spool, ConfirmacionRecepcionFichero(n, 0)
                )
                for n in requests
            ]
            wait_until_queued(peer_spool, len(requests))
            assert not any(f.done() for f in futures)  # nothing answered before the commit
        answers = sorted(f.result(timeout=10).codigo for f in futures)

    assert answers == [0, 0, 0, 1]  # the duplicate is no longer published: 1
    assert transactions == [requests]  # one transaction; the duplicate finds nothing left
    delivered = peer_spool.dir(SpoolState.DELIVERED)
    assert calls.fsyncs() == []  # the ledger commit is the commit point (test_confirmacion)
    assert sorted(p.name for p in delivered.iterdir()) == NAMES
    assert {ledger.lookup("CREC", n).state for n in NAMES} == {"delivered"}


def test_a_failed_group_commit_fails_every_confirmation_in_it(
    ledger: Ledger, peer_spool: PeerSpool, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in NAMES:
        publish(ledger, peer_spool, [name], name)

    def disk_full(peer: str, originals: list[str], detail: str) -> dict[str, list[str]]:
        raise sqlite3.OperationalError("database or disk is full")

    monkeypatch.setattr(ledger, "deliver", disk_full)
    errors: list[BaseException] = []

    def confirm(name: str) -> None:
        try:
            confirm_reception(ledger, peer_spool, ConfirmacionRecepcionFichero(name, 0))
        except sqlite3.OperationalError as exc:
            errors.append(exc)

    with peer_lock(peer_spool):
        threads = [threading.Thread(target=confirm, args=(n,)) for n in NAMES]
        for thread in threads:
            thread.start()
        wait_until_queued(peer_spool, len(NAMES))
    for thread in threads:
        thread.join(10)
    assert len(errors) == len(NAMES)  # none of them answered 0
    assert sorted(p.name for p in peer_spool.dir(SpoolState.PUBLISHED).iterdir()) == NAMES
    assert {ledger.lookup("CREC", n).state for n in NAMES} == {"published"}

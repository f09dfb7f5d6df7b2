"""Regression tests for the hostile-peer / data-loss review of the server."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

import concentrador.server.operations.confirmacion as confirmacion
from concentrador.protocol.messages import ConfirmacionRecepcionFichero
from concentrador.server.operations.confirmacion import confirm_reception
from concentrador.spool.layout import PeerSpool, SpoolState
from concentrador.spool.ledger import Ledger, PublishedEntry
from concentrador.spool.locks import peer_lock
from concentrador.spool.outbound.expiry import expire_published

NAME = "F1_0086_20240101_20240102.0.bz2"
PUBLISHED_AT = datetime(2024, 1, 1, tzinfo=UTC)


@pytest.fixture
def ledger(tmp_path: Path):
    led = Ledger(tmp_path / "ledger.sqlite3")
    yield led
    led.close()


def test_confirmation_racing_an_expiry_is_not_marked_delivered(
    tmp_path: Path, ledger: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The expiry job wins the peer lock between the confirmation's check and
    its update: the file is in expired/, so the ledger must say expired (and
    the peer hears 1), not "delivered" for a file that sits in expired/."""
    peer = PeerSpool(tmp_path, "CREC").ensure()
    (peer.dir(SpoolState.PUBLISHED) / NAME).write_bytes(b"BZh9data")
    entry = PublishedEntry(
        "CREC", NAME, NAME, "CUR", 8, hashlib.md5(b"BZh9data").hexdigest(), PUBLISHED_AT
    )
    ledger.record_published([entry])

    def expiry_first(spool: PeerSpool):
        expire_published(spool, ledger, now=PUBLISHED_AT + timedelta(days=30), publish_days=7)
        return peer_lock(spool)

    monkeypatch.setattr(confirmacion, "peer_lock", expiry_first)
    answer = confirm_reception(ledger, peer, ConfirmacionRecepcionFichero(NAME, 0))

    assert answer.codigo == 1
    assert ledger.lookup("CREC", NAME).state == SpoolState.EXPIRED.value
    assert (peer.dir(SpoolState.EXPIRED) / NAME).is_file()
    assert not (peer.dir(SpoolState.DELIVERED) / NAME).exists()

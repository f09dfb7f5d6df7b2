"""The daemon's publish pass computes the 504 get answer digests, for 504 peers we sign for."""

from __future__ import annotations

import base64
import bz2
import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from concentrador.config.model import (
    Config,
    NodeConfig,
    PeerConfig,
    ServerConfig,
    SigningConfig,
)
from concentrador.daemon.services import SpoolServices
from concentrador.protocol.iec62325.signature import content_digest
from concentrador.spool.layout import SpoolState
from concentrador.spool.ledger import Ledger, PublishedEntry
from concentrador.spool.ledger.answers import AnswerDigest
from concentrador.spool.outbound.answer_digests import answer_digest_of, answer_parts

NAME = "F1_0086_20240101_20240102.0"
DATA = bz2.compress(random.Random(5).randbytes(3_000_000))
PEERS = (
    PeerConfig(id="SIGNED", protocol="iec62325-504"),
    PeerConfig(id="UNSIGNED", protocol="iec62325-504", signatures="off"),
    PeerConfig(id="OLDPEER"),  # CPCSCC v2.3: a get of it needs no digest
)


def _config(tmp_path: Path) -> Config:
    return Config(
        path=tmp_path / "concentrador.toml",
        node=NodeConfig(id="0086", spool=tmp_path / "spool", timezone=ZoneInfo("Europe/Madrid")),
        server=ServerConfig(
            host="127.0.0.1", port=0, cert=None, key=None, client_ca=None, insecure_http=True
        ),
        client=None,
        peers=PEERS,
        # Only its presence matters here: the digest does not depend on the key.
        signing=SigningConfig(tmp_path / "sign.pem", tmp_path / "sign.key"),
    )


@pytest.fixture
def services(tmp_path: Path) -> Iterator[SpoolServices]:
    services = SpoolServices(_config(tmp_path), settle_seconds=0)
    yield services
    services.close()


def _published(services: SpoolServices, peer: str) -> PublishedEntry:
    (entry,) = services.ledger.entries_for(peer)
    return entry


def test_the_publish_pass_computes_the_digest_for_signed_504_peers_only(
    services: SpoolServices,
) -> None:
    for peer in PEERS:
        outbox = services.spool.peer(peer.id).dir(SpoolState.OUTBOX)
        (outbox / NAME).write_bytes(DATA)
        services.publish_pass(peer.id)

    entry = _published(services, "SIGNED")
    stored = services.ledger.answer_digest(
        "SIGNED", entry.name, published_at=entry.published_at, md5=entry.md5
    )
    assert stored is not None
    content = (services.spool.peer("SIGNED").dir(SpoolState.PUBLISHED) / entry.name).read_bytes()
    before, after = answer_parts(entry.name, entry.published_at, "0086")
    assert stored.fits(before, after)
    # The digest the protocol core computes over the answer's streamed text.
    assert stored.digest == content_digest(before, [base64.b64encode(content)], after)

    for peer in ("UNSIGNED", "OLDPEER"):
        other = _published(services, peer)
        key = {"published_at": other.published_at, "md5": other.md5}
        assert services.ledger.answer_digest(peer, other.name, **key) is None


def test_answer_digest_of_matches_the_core_for_any_piece_size() -> None:
    data = random.Random(9).randbytes(100_003)
    before, after = b"<before>", b"</after>"
    reference = content_digest(before, [base64.b64encode(data)], after)
    for piece in (3, 999, 65_535, 1_572_864):
        view = memoryview(data)
        offset = 0

        def read(wanted: int, view: memoryview = view) -> bytes:
            nonlocal offset
            offset += wanted
            return bytes(view[offset - wanted : offset])

        assert answer_digest_of(read, len(data), before, after, piece=piece) == reference
    with pytest.raises(ValueError, match="multiple of 3"):
        answer_digest_of(lambda n: b"", 0, before, after, piece=4)


def _row(peer: str, entry: PublishedEntry, digest: bytes = bytes(32)) -> AnswerDigest:
    return AnswerDigest.of(peer, entry.name, entry.published_at, entry.md5, b"b", b"a", digest)


def test_a_digest_is_only_found_for_its_publication_and_stale_rows_go(ledger: Ledger) -> None:
    entry = PublishedEntry("P", "F.bz2", "F.bz2", "CUR", 10, "0" * 32, _at(0))
    ledger.record_published([entry])
    ledger.record_answer_digest(_row("P", entry))
    found = ledger.answer_digest("P", "F.bz2", published_at=_at(0), md5="0" * 32)
    assert found is not None and found.fits(b"b", b"a") and not found.fits(b"x", b"a")
    assert ledger.answer_digest("P", "F.bz2", published_at=_at(1), md5="0" * 32) is None
    assert ledger.answer_digest("P", "F.bz2", published_at=_at(0), md5="1" * 32) is None
    assert ledger.forget_stale_answer_digests("P") == 0  # still published as it was

    ledger.set_state("P", "F.bz2", "expired")
    ledger.republish("P", "F.bz2", at=_at(2), actor="test", reason="test")
    assert ledger.forget_stale_answer_digests("P") == 1  # its publication changed
    with pytest.raises(ValueError, match="32 bytes"):
        _row("P", entry, b"short")


def _at(hours: int) -> datetime:
    return datetime(2024, 1, 1, tzinfo=UTC) + timedelta(hours=hours)

"""recogerFichero's ``fetched`` events, on both ledger backends.

``open_published_file`` hands the row it looked up to ``note_fetched``, so the
event is written without reading that row again. The trail must not notice:
one event per fetch, in fetch order, each naming the block (or "the whole
file"), its size and the remote, exactly as the event read from the ledger
says; and a name not published for this peer gets no event at all.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from concentrador.server.operations.recoger import FileNotPublished, open_published_file
from concentrador.spool.layout import Spool, SpoolState
from concentrador.spool.ledger import Ledger, PublishedEntry
from tests.spool.ledger.conftest import (  # noqa: F401 - fixtures: both backends
    LedgerFactory,
    backend,
    ledger_postgres,
    open_ledger,
)

T0 = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)
PEER = "0021"
WHOLE = "F1_0086_20240301_20240302.0.bz2"
SPLIT = "F1_0086_20240301_20240302.1.bz2"


@pytest.fixture
def ledger(open_ledger: LedgerFactory) -> Ledger:  # noqa: F811 - on both backends here
    return open_ledger()


def publish(spool_root: Path, ledger: Ledger) -> Spool:
    spool = Spool(spool_root)
    spool.ensure([PEER])
    published = spool.peer(PEER).dir(SpoolState.PUBLISHED)
    files = {WHOLE: (WHOLE, b"w" * 50), f"{SPLIT}.1_2": (SPLIT, b"a" * 30)}
    files[f"{SPLIT}.2_2"] = (SPLIT, b"b" * 7)
    files["other.bz2"] = ("other.bz2", b"o" * 9)  # another peer's
    entries = []
    for name, (original, content) in files.items():
        (published / name).write_bytes(content)
        peer = "0022" if name == "other.bz2" else PEER
        entries.append(PublishedEntry(peer, name, original, "F1", len(content), "0" * 32, T0))
    ledger.record_published(entries)
    return spool


def test_one_fetched_event_per_fetch_in_order_as_the_ledger_reads_it(
    ledger: Ledger, tmp_path: Path
) -> None:
    peer_spool = publish(tmp_path / "spool", ledger).peer(PEER)
    order = [f"{SPLIT}.2_2", WHOLE, f"{SPLIT}.1_2", f"{SPLIT}.2_2", WHOLE]
    for k, name in enumerate(order):
        served = open_published_file(
            ledger, peer_spool, name, read_ahead=1 << 16, remote=f"10.0.0.{k}"
        )
        assert served.complete
    fetched = [
        (e.name, e.detail)
        for original in (SPLIT, WHOLE)
        for e in ledger.events_for(PEER, original)
        if e.kind == "fetched"
    ]
    assert fetched == [
        (SPLIT, f"{SPLIT}.2_2 (7 bytes) by 10.0.0.0"),
        (SPLIT, f"{SPLIT}.1_2 (30 bytes) by 10.0.0.2"),
        (SPLIT, f"{SPLIT}.2_2 (7 bytes) by 10.0.0.3"),
        (WHOLE, "the whole file (50 bytes) by 10.0.0.1"),
        (WHOLE, "the whole file (50 bytes) by 10.0.0.4"),
    ]
    # The same words as an event whose row is read in its own transaction.
    ledger.note_fetched(PEER, WHOLE, "10.0.0.4")
    trail = [e for e in ledger.events_for(PEER, WHOLE) if e.kind == "fetched"]
    assert trail[-1].detail == trail[-2].detail
    ids = [e.id for e in trail]
    assert ids == sorted(ids)


def test_nothing_served_nor_noted_for_a_name_not_published_for_this_peer(
    ledger: Ledger, tmp_path: Path
) -> None:
    spool = publish(tmp_path / "spool", ledger)
    ledger.set_state(PEER, WHOLE, "delivered")
    for name in ("other.bz2", WHOLE, "missing.bz2"):
        with pytest.raises(FileNotPublished):
            open_published_file(ledger, spool.peer(PEER), name, remote="10.0.0.9")
    for original in ("other.bz2", WHOLE, "missing.bz2"):
        for peer in (PEER, "0022"):
            assert not [e for e in ledger.events_for(peer, original) if e.kind == "fetched"]

"""The audit trail after a real collection between our server and our collector."""

from __future__ import annotations

import bz2
import random
from pathlib import Path
from typing import Any

import pytest

from concentrador.client.runner import ClientRunner
from concentrador.spool.ledger import EventKind, Ledger
from tests.client.conftest import CLIENT_ID, SERVER_ID, bz2_payload, client_config

pytestmark = pytest.mark.asyncio


def kinds(ledger: Ledger, peer: str, name: str) -> list[str]:
    return [event.kind for event in ledger.events_for(peer, name)]


async def test_collect_writes_both_trails_in_order(
    own_server: Any, pki: Any, tmp_path: Path, client_ledger: Ledger
) -> None:
    server = await own_server()
    whole = "F1_0086_20240101_20240102.0.bz2"
    split = "P1_0086_20240101.0.bz2"
    server.publish(whole, bz2_payload(1))
    blocks = server.publish(
        split, bz2.compress(random.Random(3).randbytes(2_300_000), 1), block_size=1_048_576
    )
    config = client_config(pki, tmp_path / "client-spool", server.url)

    await ClientRunner(config, client_ledger).collect(SERVER_ID)

    # Our server's side: published, listed once, each block fetched (with the
    # caller's address), then delivered on code 0.
    assert kinds(server.ledger, CLIENT_ID, split) == [
        EventKind.PUBLISHED,
        EventKind.LISTED,
        *[EventKind.FETCHED] * len(blocks),
        EventKind.DELIVERED,
    ]
    trail = server.ledger.events_for(CLIENT_ID, split)
    fetched = [e for e in trail if e.kind == EventKind.FETCHED]
    assert [e.detail.split()[0] for e in fetched] == blocks
    assert all("127.0.0.1" in e.detail for e in fetched)
    assert "127.0.0.1" in trail[1].detail
    assert "code 0" in trail[-1].detail and all(e.actor is None for e in trail)
    assert [e.at for e in trail] == sorted(e.at for e in trail)
    assert kinds(server.ledger, CLIENT_ID, whole) == [
        EventKind.PUBLISHED,
        EventKind.LISTED,
        EventKind.FETCHED,
        EventKind.DELIVERED,
    ]
    # The collector's side: every block, the rebuild, the store, our confirmation.
    received = client_ledger.events_for(SERVER_ID, split)
    assert [e.kind for e in received] == [
        *[EventKind.BLOCK_RECEIVED] * len(blocks),
        EventKind.REASSEMBLED,
        EventKind.STORED,
        EventKind.CONFIRMED,
    ]
    assert [e.detail.split()[1] for e in received[:3]] == ["1/3", "2/3", "3/3"]
    assert received[3].detail == "from 3 blocks" and "inbox/" in received[4].detail
    assert kinds(client_ledger, SERVER_ID, whole) == [EventKind.STORED, EventKind.CONFIRMED]

    # A second cycle lists nothing new: the trails do not grow.
    await ClientRunner(config, client_ledger).collect(SERVER_ID)
    assert len(server.ledger.events_for(CLIENT_ID, split)) == len(trail)
    assert len(client_ledger.events_for(SERVER_ID, split)) == len(received)

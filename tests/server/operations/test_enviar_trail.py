"""enviarFichero's audit trail: each received block names the address it came from."""

from __future__ import annotations

import bz2
import os

from concentrador.spool.layout import SpoolState
from tests.server.conftest import Node
from tests.server.operations.test_enviar import push

ORIGINAL = "F1_0086_20240101_20240102.0.bz2"


async def test_block_received_events_name_the_sender(node: Node, crec) -> None:
    compressed = bz2.compress(os.urandom(60_000), 1)
    half = len(compressed) // 2
    assert await push(crec, node, f"{ORIGINAL}.1_2", compressed[:half]) == 0
    assert await push(crec, node, f"{ORIGINAL}.2_2", compressed[half:]) == 0
    await node.drain()
    assert node.names("CREC", SpoolState.INBOX) == [ORIGINAL]
    trail = node.ledger.events_for("CREC", ORIGINAL)
    received = [e.detail for e in trail if e.kind == "block_received"]
    assert received == [
        f"block 1/2 ({half} bytes) from 127.0.0.1",
        f"block 2/2 ({len(compressed) - half} bytes) from 127.0.0.1",
    ]
    # The file typed by its name (F1_ is CUR), so a type search finds it.
    (row,) = node.ledger.search_files(peer="CREC", file_type="CUR").rows
    assert (row.direction, row.name) == ("received", ORIGINAL)

"""The server only stores blocks and asks for their set's rebuild; it never rebuilds.

The code-6 answer for a block must reach the rebuild through the ledger, not
through the request that happened to complete the set: a rebuild that runs
later (a sweep, another process after a restart) still goes to ``manual/``.
"""

from __future__ import annotations

import bz2
import hashlib
import os

from concentrador.config.loadwindow import LoadWindow
from concentrador.protocol.messages import EnviarFichero, EnviarFicheroResponse, Fichero
from concentrador.spool.inbound.reassembly import Reassembler
from concentrador.spool.layout import SpoolState
from tests.server.conftest import Node, dime_call, dime_request

ORIGINAL = "P1_0086_20240101.0.bz2"


async def push(session, node: Node, name: str, data: bytes) -> int:
    fichero = Fichero(name, hashlib.md5(data).hexdigest())
    answer = await dime_call(session, node.url, dime_request(EnviarFichero(fichero).to_xml(), data))
    assert answer.status == 200, answer.raw[:500]
    return EnviarFicheroResponse.from_xml(answer.body).codigo


def halves(data: bytes) -> list[bytes]:
    cut = len(data) // 2
    return [data[:cut], data[cut:]]


async def test_blocks_are_stored_and_their_rebuild_is_requested(start_server, crec) -> None:
    asked: list[tuple[str, str]] = []

    async def rebuild(peer_id: str, original: str) -> None:
        asked.append((peer_id, original))  # a daemon that stopped before rebuilding

    node = await start_server(
        CREC={"load_window": LoadWindow.parse("22:00-06:00")}, state_changes={"rebuild": rebuild}
    )
    data = bz2.compress(os.urandom(100_000))
    first, last = halves(data)
    node.clock[0] = node.clock[0].replace(hour=23)  # 00:00 in Madrid: inside the window
    assert await push(crec, node, f"{ORIGINAL}.1_2", first) == 0
    node.clock[0] = node.clock[0].replace(hour=10)  # 11:00 in Madrid: outside
    assert await push(crec, node, f"{ORIGINAL}.2_2", last) == 6
    await node.drain()
    assert asked == [("CREC", ORIGINAL), ("CREC", ORIGINAL)]
    assert node.names("CREC", SpoolState.PARTIAL) == [f"{ORIGINAL}.1_2", f"{ORIGINAL}.2_2"]

    # The sweep that finally rebuilds it knows nothing of the request: the ledger does.
    peer_spool = node.spool.peer("CREC")
    stored = Reassembler(peer_spool, node.ledger, decompress=False).sweep()
    assert stored == [node.folder("CREC", SpoolState.MANUAL) / ORIGINAL]
    assert stored[0].read_bytes() == data
    assert node.names("CREC", SpoolState.INBOX) == []


async def test_without_a_daemon_the_set_is_rebuilt_in_a_worker_thread(node: Node, crec) -> None:
    data = bz2.compress(os.urandom(100_000))
    for k, piece in enumerate(halves(data), start=1):
        assert await push(crec, node, f"{ORIGINAL}.{k}_2", piece) == 0
    await node.drain()
    assert (node.folder("CREC", SpoolState.INBOX) / ORIGINAL).read_bytes() == data
    assert node.names("CREC", SpoolState.PARTIAL) == []

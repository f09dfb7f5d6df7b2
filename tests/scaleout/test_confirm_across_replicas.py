"""A confirmation answered by replica B for a file that replica A listed unlists it
for everyone (issue 12, "Serving from any replica").

Two replicas of node 0086 on one shared spool and one PostgreSQL ledger
(:func:`tests.scaleout.replicas.build_cluster`). The remote peer CREC talks to
each replica DIRECTLY, on its own port, with the client's v2.3
:class:`PeerSession`, so which replica answers each call is chosen by the test,
not by HAProxy's round-robin:

1. ``informacionDisponible`` on A and on B list the file (published by the
   replicas' own publish pass from the shared outbox);
2. ``recogerFichero`` on A serves it, intact;
3. ``confirmacionRecepcionFichero`` (code 0) on B is answered 0;
4. ``informacionDisponible`` on A and on B no longer list it, and
   ``recogerFichero`` on A answers ``Client.Fichero`` (not published).

What would break it: a replica answering listings or fetches from state of
its own (a cache of the published folder or of ledger rows) that B's
confirmation does not reach.
"""

from __future__ import annotations

import asyncio
import bz2
import dataclasses
import hashlib
import io
from pathlib import Path

import pytest

from concentrador.client.errors import FileVanished
from concentrador.client.session import PeerSession
from concentrador.config import load_config
from concentrador.config.model import Config, PeerConfig
from concentrador.protocol import FaultCode
from concentrador.spool.ledger import Ledger
from concentrador.spool.ledger.events import EventKind
from tests.e2e.demo_nodes import Node
from tests.scaleout.replicas import (
    NODE_ID,
    Cluster,
    content_for,
    file_name,
    names_in,
    plain_name,
    stop_replicas_cleanly,
    wait_for,
    write_atomically,
)

pytest.importorskip("psycopg")

PEER = "CREC"
FILE_SIZE = 3_000


def _direct(config: Config, replica: Node) -> PeerConfig:
    """The peer's view of node 0086, pointed at one replica instead of HAProxy."""
    node = config.peer_by_id(NODE_ID)
    assert node is not None
    # "localhost": the name in the replicas' (shared) server certificate.
    return dataclasses.replace(node, url=f"https://localhost:{replica.port}/")


async def _listed(config: Config, replica: PeerConfig) -> list[str]:
    async with PeerSession.open(config, replica) as session:
        answer = await session.informacion_disponible(replica.collect_types)
    return sorted(datos.nombre for _tipo, datos in answer.files())


async def _fetch(config: Config, replica: PeerConfig, name: str) -> tuple[str, bytes]:
    sink = io.BytesIO()
    async with PeerSession.open(config, replica) as session:
        fichero, _size = await session.recoger_fichero(name, sink)
    return fichero.checksum, sink.getvalue()


async def _confirm(config: Config, replica: PeerConfig, name: str) -> bool:
    async with PeerSession.open(config, replica) as session:
        return await session.confirmacion(name, 0)


def test_confirmation_on_b_unlists_for_everyone_a_file_a_listed(cluster: Cluster) -> None:
    config = load_config(cluster.peers[PEER].config)
    a, b = (_direct(config, replica) for replica in cluster.replicas)
    name = file_name("F1", NODE_ID, 0)
    content = content_for(name, FILE_SIZE)
    shared = cluster.peer_spool(PEER)
    write_atomically(shared / "outbox", name, content)

    # 1. Published by whichever replica won the publish claim; both list it.
    def a_lists_it() -> bool:
        return any(plain_name(Path(n)) == name for n in asyncio.run(_listed(config, a)))

    wait_for(f"replica A to list {name}", a_lists_it, 30, cluster.diagnostics)
    (listed,) = [n for n in asyncio.run(_listed(config, a)) if plain_name(Path(n)) == name]
    assert listed in asyncio.run(_listed(config, b))

    # 2. A serves it, intact (the MD5 is of the bytes on the wire, compressed or not).
    checksum, data = asyncio.run(_fetch(config, a, listed))
    assert checksum == hashlib.md5(data).hexdigest()
    assert (bz2.decompress(data) if listed.endswith(".bz2") else data) == content

    # 3. B confirms it.
    assert asyncio.run(_confirm(config, b, listed)) is True

    # 4. Gone for everyone, at once (no wait: nothing is allowed to lag).
    assert listed not in asyncio.run(_listed(config, a))
    assert listed not in asyncio.run(_listed(config, b))
    with pytest.raises(FileVanished) as vanished:
        asyncio.run(_fetch(config, a, listed))
    assert vanished.value.fault.code == FaultCode.FICHERO
    assert vanished.value.operation == "recogerFichero"

    # Each call landed where the test sent it: B took the confirmation, A did not.
    replica_a, replica_b = cluster.replicas
    confirmed = f"{PEER} confirmed {listed}"
    assert confirmed in replica_b.log_text(), cluster.diagnostics()
    assert confirmed not in replica_a.log_text(), cluster.diagnostics()

    # The shared spool and the ledger agree: delivered once, nothing left published.
    assert names_in(shared / "published") == []
    assert names_in(shared / "delivered") == [name]
    with Ledger(url=cluster.pg_url) as ledger:
        kinds = [event.kind for event in ledger.events_for(PEER, listed)]
    assert kinds.count(EventKind.DELIVERED) == 1, kinds
    stop_replicas_cleanly(cluster)

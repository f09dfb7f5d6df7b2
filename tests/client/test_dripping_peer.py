"""Issue 13, item 4: a peer that drips its answer cannot hold our client.

The fake peer answers recogerFichero with its headers and 2,000 bytes, then
one byte every 0.4 s. Before the call deadline, ``sock_read`` restarted with
every byte and the cycle (and the peer's cycle lock) never ended.
"""

from __future__ import annotations

import asyncio
import bz2
import hashlib
import os
import random
import re
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from concentrador.client.errors import PeerConnectionError
from concentrador.client.runner import ClientRunner
from concentrador.protocol.dime import DimeMessageWriter
from concentrador.protocol.messages import Fichero, RecogerFichero, RecogerFicheroResponse
from concentrador.protocol.soap import build_envelope
from concentrador.spool.layout import Spool, SpoolState
from concentrador.spool.ledger import Ledger
from tests.client.conftest import CLIENT_ID, MADRID, SERVER_ID, client_config
from tests.client.fake_peer import FakePeer

pytestmark = pytest.mark.asyncio

NAME = "A.bz2"


class DrippingPeer(FakePeer):
    """Answers recogerFichero with 2,000 bytes, then a byte every 0.4 s."""

    dripping = True

    async def recoger(self, request: web.Request, message: RecogerFichero) -> web.StreamResponse:
        if not self.dripping:
            return await super().recoger(request, message)
        data = self.files[message.nombre_fichero]
        fichero = Fichero(message.nombre_fichero, hashlib.md5(data).hexdigest())
        envelope = build_envelope(RecogerFicheroResponse(fichero).to_xml())
        writer = DimeMessageWriter(envelope, len(data))
        wire = writer.begin() + b"".join(bytes(part) for part in writer.write(data)) + writer.end()
        response = web.StreamResponse(headers={"Content-Type": "application/dime"})
        response.content_length = len(wire)
        await response.prepare(request)
        await response.write(wire[:2000])
        try:
            for byte in wire[2000:]:
                await asyncio.sleep(0.4)
                await response.write(bytes([byte]))
        except ConnectionError:  # the client gave up on us: the point of the test
            pass
        return response


@pytest.fixture
async def dripping_peer() -> Any:
    payload = bz2.compress(random.Random(13).randbytes(20_000))
    peer = DrippingPeer(files={NAME: payload}, fecha_hora=datetime.now(MADRID).replace(tzinfo=None))
    runner = web.AppRunner(peer.app(), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield peer, f"http://127.0.0.1:{port}/cpcscc"
    await runner.cleanup()


def leftovers(spool: Path) -> dict[str, list[str]]:
    peer = Spool(spool).peer(SERVER_ID)
    work = sorted(p.name for p in peer.work_dir.iterdir() if p.name != "peer.lock")
    return {"inbox": [p.name for p in peer.files(SpoolState.INBOX)], "work": work}


async def test_a_dripped_download_fails_the_cycle_within_the_deadline(
    dripping_peer: Any, pki: Any, tmp_path: Path, client_ledger: Ledger
) -> None:
    peer, url = dripping_peer
    config = client_config(pki, tmp_path / "client-spool", url, timeout=1, retries=0)
    runner = ClientRunner(config, client_ledger)
    started = time.monotonic()
    with pytest.raises(PeerConnectionError) as caught:
        await runner.collect(SERVER_ID)
    elapsed = time.monotonic() - started
    assert elapsed < 5.0  # deadline: 1 s + ~2 KB at 32 KiB/s, plus the listing
    assert re.search(r"recogerFichero: too slow: 20\d\d bytes in 1\.\d s", str(caught.value))
    assert leftovers(config.node.spool) == {"inbox": [], "work": []}
    assert peer.confirmations == []
    assert "failed" in client_ledger.status(SERVER_ID)["last_cycle_result"]

    peer.dripping = False  # the lock was released: the next cycle resumes
    summary = await runner.collect(SERVER_ID)
    assert summary.confirmed == [NAME]
    assert leftovers(config.node.spool)["inbox"] == [NAME]


async def test_concentrador_collect_exits_non_zero_on_a_dripping_peer(
    dripping_peer: Any, pki: Any, tmp_path: Path
) -> None:
    _, url = dripping_peer
    d = pki.directory
    config = tmp_path / "concentrador.toml"
    config.write_text(
        f'[node]\nid = "{CLIENT_ID}"\nspool = "{tmp_path / "spool"}"\n'
        "[server]\ninsecure_http = true\n"
        f'[client]\ncert = "{d / "CREC-client.pem"}"\nkey = "{d / "CREC-client.key"}"\n'
        f'ca = "{d / "ca.pem"}"\ntimeout = 2\nretries = 0\n'
        f'[[peers]]\nid = "{SERVER_ID}"\nurl = "{url}"\n'
    )
    started = time.monotonic()
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "concentrador", "--config", str(config), "collect", SERVER_ID,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": os.getcwd()},
    )  # fmt: skip
    _, stderr = await asyncio.wait_for(process.communicate(), 30)
    elapsed = time.monotonic() - started
    assert process.returncode != 0
    assert b"recogerFichero: too slow" in stderr
    assert elapsed < 15.0  # 2 s deadline plus interpreter start-up, generously
    assert leftovers(tmp_path / "spool")["inbox"] == []

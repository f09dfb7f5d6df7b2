"""The 504 push cycle against our own server over mutual TLS."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from concentrador.client.iec62325.upload import SignedUpload, base64_length
from concentrador.client.runner import ClientRunner
from concentrador.pki import DevPki
from concentrador.spool.layout import Spool, SpoolState
from concentrador.spool.ledger import Ledger
from tests.client.conftest import SERVER_ID, bz2_payload
from tests.client.iec62325.conftest import iec_client_config


def sending(root: Path) -> Path:
    return Spool(root).peer(SERVER_ID).ensure().dir(SpoolState.SENDING)


def names(root: Path, state: str) -> list[str]:
    path = Spool(root).peer(SERVER_ID).dir(state)
    return sorted(p.name for p in path.iterdir() if not p.name.endswith(".reason"))


async def test_push_puts_whole_files_and_block_sets_whole(
    pki: DevPki, client_root: Path, iec_server: Any
) -> None:
    server = await iec_server()
    whole = bz2_payload(1, 200_000)
    split = bz2_payload(2, 300_000)
    folder = sending(client_root)
    (folder / "CUR_CREC_0086_20240101.0.bz2").write_bytes(whole)
    # As the v2.3 publisher cuts a file: byte ranges named NAME.k_n.
    (folder / "CUR_CREC_0086_20240102.0.bz2.1_2").write_bytes(split[:100_000])
    (folder / "CUR_CREC_0086_20240102.0.bz2.2_2").write_bytes(split[100_000:])
    config = iec_client_config(pki, client_root, server.url, deliver="push")
    with Ledger(client_root / "ledger.sqlite3") as ledger:
        summary = await ClientRunner(config, ledger).push(SERVER_ID)
    assert summary.delivered == ["CUR_CREC_0086_20240101.0.bz2", "CUR_CREC_0086_20240102.0.bz2"]
    assert summary.bytes == len(whole) + len(split)
    assert server.received() == {
        "CUR_CREC_0086_20240101.0.bz2": whole,
        "CUR_CREC_0086_20240102.0.bz2": split,
    }
    assert names(client_root, SpoolState.SENDING) == []
    assert len(names(client_root, SpoolState.DELIVERED)) == 3


async def test_a_client_fault_escalates_at_once(
    pki: DevPki, client_root: Path, iec_server: Any
) -> None:
    server = await iec_server(allowed_types=frozenset({"XYZ"}))
    (sending(client_root) / "CUR_CREC_0086_20240101.0.bz2").write_bytes(bz2_payload(1))
    config = iec_client_config(pki, client_root, server.url, deliver="push")
    with Ledger(client_root / "ledger.sqlite3") as ledger:
        summary = await ClientRunner(config, ledger).push(SERVER_ID)
    assert summary.failed == ["CUR_CREC_0086_20240101.0.bz2"]
    assert names(client_root, SpoolState.FAILED) == ["CUR_CREC_0086_20240101.0.bz2"]
    reason = (Spool(client_root).peer(SERVER_ID).dir(SpoolState.FAILED)).glob("*.reason")
    assert "Client.PUT-005" in next(reason).read_text()
    assert server.received() == {}


async def test_an_unsigned_put_is_refused_by_a_server_that_requires_signatures(
    pki: DevPki, client_root: Path, iec_server: Any
) -> None:
    server = await iec_server()
    (sending(client_root) / "A.bz2").write_bytes(bz2_payload(1))
    config = iec_client_config(pki, client_root, server.url, deliver="push", signatures="off")
    with Ledger(client_root / "ledger.sqlite3") as ledger:
        summary = await ClientRunner(config, ledger).push(SERVER_ID)
    assert summary.failed == ["A.bz2"]
    assert server.received() == {}


def test_upload_content_length_matches_the_bytes_sent(pki: DevPki, tmp_path: Path) -> None:
    import asyncio

    from concentrador.client.iec62325.signatures import Signatures
    from concentrador.protocol import SOAP12
    from concentrador.protocol.iec62325.request import put_binary_request

    config = iec_client_config(pki, tmp_path, "https://localhost:1/ServiceEME")
    signatures = Signatures.from_config(config, config.peers[0])
    for size in (0, 1, 2, 3, 4, 1_000_001):
        path = tmp_path / f"f{size}"
        path.write_bytes(bytes(range(256)) * (size // 256) + bytes(size % 256))
        message = put_binary_request(path.name)
        upload = SignedUpload.prepare(message, [path], signatures, SOAP12)

        async def collect(upload: SignedUpload = upload) -> bytes:
            return b"".join([piece async for piece in upload.body()])

        body = asyncio.run(collect())
        assert len(body) == upload.content_length
        assert upload.content_length - len(upload.prefix) - len(upload.suffix) == base64_length(
            size
        )

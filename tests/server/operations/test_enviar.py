"""enviarFichero (CPCSCC.md §4.5): streaming DIME in, the order of checks, storage."""

from __future__ import annotations

import asyncio
import bz2
import contextlib
import errno
import hashlib
import os
import ssl

import pytest

from concentrador.config.loadwindow import LoadWindow
from concentrador.protocol.blocks import MAX_RECEIVE_SIZE, parse_block_name
from concentrador.protocol.dime import DimeMessageWriter
from concentrador.protocol.messages import (
    EnviarFichero,
    EnviarFicheroResponse,
    Fichero,
    PeticionFechaHora,
)
from concentrador.protocol.names import validate_peer_filename
from concentrador.protocol.soap import build_envelope, parse_envelope
from concentrador.spool.durable import StorageError
from concentrador.spool.inbound.store import InboundStore, InboundWriter
from concentrador.spool.layout import SpoolState
from tests.server.conftest import Node, client_context, dime_call, dime_request, soap_call

NAME = "F1_0086_20240101_20240102.0.bz2"
STORAGE = (SpoolState.INBOX, SpoolState.PARTIAL, SpoolState.MANUAL)


def push_message(name: str, data: bytes, *, checksum: str | None = None, **kwargs) -> bytes:
    fichero = Fichero(name, checksum or hashlib.md5(data).hexdigest())
    return dime_request(EnviarFichero(fichero).to_xml(), data, **kwargs)


async def push(session, node: Node, name: str, data: bytes, **kwargs) -> int:
    answer = await dime_call(session, node.url, push_message(name, data, **kwargs))
    assert answer.status == 200, answer.raw[:500]
    return EnviarFicheroResponse.from_xml(answer.body).codigo


def stored(node: Node, peer: str = "CREC") -> dict[str, list[str]]:
    found = {state.value: node.names(peer, state) for state in STORAGE}
    found[".work"] = node.work_files(peer)
    return {k: v for k, v in found.items() if v}


async def test_whole_file_is_stored_in_inbox(node: Node, crec) -> None:
    data = os.urandom(300_000)
    assert await push(crec, node, NAME, data) == 0
    assert stored(node) == {"inbox": [NAME]}
    assert (node.folder("CREC", SpoolState.INBOX) / NAME).read_bytes() == data
    received = node.ledger.received("CREC", NAME)
    assert received.md5 == hashlib.md5(data).hexdigest() and received.size == len(data)


async def test_upper_case_checksum_is_accepted(node: Node, crec) -> None:
    data = b"BZh9 not really"
    assert await push(crec, node, NAME, data, checksum=hashlib.md5(data).hexdigest().upper()) == 0


async def test_checksum_mismatch_is_1_and_nothing_stored(node: Node, crec) -> None:
    assert await push(crec, node, NAME, b"data", checksum="0" * 32) == 1
    assert stored(node) == {}


async def test_exactly_8_mib_is_accepted_and_one_byte_more_is_5(node: Node, crec) -> None:
    data = os.urandom(MAX_RECEIVE_SIZE)
    assert await push(crec, node, NAME, data, chunk_size=1 << 20) == 0
    assert await push(crec, node, "F1_0086_20240101_20240102.1.bz2", data + b"x") == 5
    assert stored(node) == {"inbox": [NAME]}


async def test_oversized_block_is_refused_without_reading_on(node: Node, crec) -> None:
    """The DIME header announces 9 MiB; we answer 5 while the sender is still sending."""
    size = 9 << 20
    envelope = build_envelope(
        EnviarFichero(Fichero(NAME, "0" * 32)).to_xml(), concentrador_id="CREC"
    )
    writer = DimeMessageWriter(envelope, size)
    stalled = asyncio.Event()

    async def body():
        yield writer.begin()
        for part in writer.write(bytes(64 * 1024)):
            yield bytes(part)
        await stalled.wait()  # never sends the remaining ~9 MiB

    answer = await asyncio.wait_for(dime_call(crec, node.url, body()), timeout=10)
    assert EnviarFicheroResponse.from_xml(answer.body).codigo == 5
    assert stored(node) == {}


async def test_oversized_beats_an_invalid_name(node: Node, crec) -> None:
    assert await push(crec, node, "../evil", bytes(MAX_RECEIVE_SIZE + 1)) == 5


@pytest.mark.parametrize(
    "name", ["../inbox/x.bz2", "/etc/passwd", "a/b", "..", "x\x7fy", "a\u202eb", ".hid"]
)
async def test_unsafe_name_is_2_and_nothing_stored(node: Node, crec, name: str) -> None:
    assert await push(crec, node, name, b"data") == 2
    assert stored(node) == {}
    assert sorted(p.name for p in node.spool.root.iterdir()) == [
        "CREC",
        "OTRO",
        "ledger.sqlite3",
        "ledger.sqlite3-shm",
        "ledger.sqlite3-wal",
    ]


async def test_unsafe_name_beats_a_bad_checksum(node: Node, crec) -> None:
    assert await push(crec, node, "../x", b"data", checksum="0" * 32) == 2


async def test_participant_not_allowed_is_3(start_server, crec) -> None:
    node = await start_server(CREC={"participants": frozenset({"0001"})})
    assert await push(crec, node, NAME, b"data") == 3  # NAME's participant is 0086
    assert await push(crec, node, NAME, b"data", checksum="f" * 32) == 1  # checksum first
    assert stored(node) == {}
    assert await push(crec, node, "F1_0001_20240101_20240102.0.bz2", b"data") == 0


async def test_type_not_allowed_is_4(start_server, crec) -> None:
    node = await start_server(CREC={"allowed_types": frozenset({"INC"})})
    assert await push(crec, node, NAME, b"data") == 4  # F1 is CUR
    assert await push(crec, node, "UNKNOWN_PREFIX_1.bz2", b"data") == 4  # no type at all
    assert stored(node) == {}


async def test_participant_check_comes_before_type_check(start_server, crec) -> None:
    node = await start_server(
        CREC={"participants": frozenset({"0001"}), "allowed_types": frozenset({"INC"})}
    )
    assert await push(crec, node, NAME, b"data") == 3


async def test_outside_load_window_is_6_and_stored_for_manual_load(start_server, crec) -> None:
    node = await start_server(CREC={"load_window": LoadWindow.parse("22:00-06:00")})
    # The frozen clock says 11:00 in Madrid: outside.
    assert await push(crec, node, NAME, b"data") == 6
    assert stored(node) == {"manual": [NAME]}
    node.clock[0] = node.clock[0].replace(hour=23)  # 00:00 in Madrid: inside
    assert await push(crec, node, "F1_0086_20240101_20240102.1.bz2", b"more") == 0
    assert stored(node)["inbox"] == ["F1_0086_20240101_20240102.1.bz2"]


async def test_chunked_dime_records_are_reassembled(node: Node, crec) -> None:
    data = os.urandom(1_000_003)
    assert await push(crec, node, NAME, data, chunk_size=65_536) == 0
    assert (node.folder("CREC", SpoolState.INBOX) / NAME).read_bytes() == data


async def test_http_chunked_transfer_and_expect_continue(node: Node, crec) -> None:
    data = os.urandom(200_000)
    message = push_message(NAME, data)

    async def pieces():
        for start in range(0, len(message), 7_777):
            yield message[start : start + 7_777]

    async with crec.post(
        node.url, data=pieces(), expect100=True, headers={"Content-Type": "application/dime"}
    ) as response:
        assert response.status == 200
        assert response.request_info.headers.get("Transfer-Encoding") == "chunked"
        assert response.request_info.headers.get("Expect") == "100-continue"
        answer = EnviarFicheroResponse.from_xml(await _body(response))
    assert answer.codigo == 0
    assert (node.folder("CREC", SpoolState.INBOX) / NAME).read_bytes() == data


async def _body(response):
    from concentrador.protocol.soap import parse_envelope

    return parse_envelope(await response.read()).first_body_element


async def test_header_mismatch_on_push_stores_nothing(node: Node, crec) -> None:
    answer = await dime_call(crec, node.url, push_message(NAME, b"data", concentrador_id="OTRO"))
    assert answer.status == 500 and answer.fault_code == "Client.Autenticacion"
    assert stored(node) == {}


class _FullDiskWriter(InboundWriter):
    """Fails like a full disk once 100 kB are written."""

    def write(self, data) -> int:
        if self.size + len(data) > 100_000:
            self.abort()
            cause = OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            raise StorageError("write", self.temp_path, cause)
        return super().write(data)


class _FullDiskStore(InboundStore):
    def open(self, name: str, *, manual: bool) -> InboundWriter:
        validate_peer_filename(name)
        return _FullDiskWriter(
            self.spool.work_dir, name=name, manual=manual, block=parse_block_name(name)
        )


@pytest.mark.parametrize("name", [NAME, NAME + ".1_2"])
async def test_full_disk_is_2_and_leaves_nothing(node: Node, crec, name: str) -> None:
    node.state.inbound_store = lambda spool, peer: _FullDiskStore(
        spool, node.ledger, decompress=False
    )
    assert await push(crec, node, name, os.urandom(3 << 20)) == 2
    assert stored(node) == {}
    # The server keeps serving.
    assert (await soap_call(crec, node.url, PeticionFechaHora().to_xml())).status == 200


async def test_axis_content_length_bug_is_tolerated(node: Node, pki, caplog) -> None:
    # Axis 1.x, HTTP/1.0: 3 chunks of 1 MiB, so its Content-Length is 24 bytes short
    # and those 24 bytes follow the declared body (CPCSCC.md §10).
    data = os.urandom((2 << 20) + 1000)
    message = push_message(NAME, data, chunk_size=1 << 20)
    declared = len(message) - 12 * 2
    head = (
        "POST /cpcscc HTTP/1.0\r\nHost: localhost\r\nContent-Type: application/dime\r\n"
        f'SOAPAction: "enviarFichero"\r\nContent-Length: {declared}\r\n\r\n'
    ).encode()
    port = int(node.url.split(":")[2].split("/")[0])
    context = client_context(pki, "CREC-client")
    reader, writer = await asyncio.open_connection("localhost", port, ssl=context)
    writer.write(head + message)
    await writer.drain()
    # HTTP/1.0: the server answers and closes, nothing else on the wire.
    answer = await asyncio.wait_for(reader.read(), timeout=10)
    writer.close()
    with_suppressed(writer)
    status_line, _, rest = answer.partition(b"\r\n")
    assert status_line.startswith(b"HTTP/1.0 200 ")
    response = parse_envelope(rest.partition(b"\r\n\r\n")[2])
    assert EnviarFicheroResponse.from_xml(response.first_body_element).codigo == 0
    assert stored(node) == {"inbox": [NAME]}
    assert (node.folder("CREC", SpoolState.INBOX) / NAME).read_bytes() == data
    tolerated = [r for r in caplog.records if "Axis 1.x DIME Content-Length bug" in r.message]
    assert len(tolerated) == 1 and tolerated[0].levelname == "WARNING"
    assert f"Content-Length {declared}, DIME message {len(message)} bytes" in tolerated[0].message


def with_suppressed(writer) -> None:
    with contextlib.suppress(OSError, ssl.SSLError):
        writer.transport.abort()


def _bzip2_blocks(data: bytes, count: int) -> list[bytes]:
    compressed = bz2.compress(data, 1)
    cut = -(-len(compressed) // count)
    return [compressed[i * cut : (i + 1) * cut] for i in range(count)]


async def test_blocks_out_of_order_across_a_restart_rebuild_once(
    start_server, crec, tmp_path
) -> None:
    original = "P1_20031120.1.bz2"
    data = os.urandom(150_000)
    blocks = _bzip2_blocks(data, 3)
    root = tmp_path / "shared-spool"
    first = await start_server(spool_root=root)
    assert await push(crec, first, f"{original}.3_3", blocks[2]) == 0
    assert await push(crec, first, f"{original}.1_3", blocks[0]) == 0
    await first.drain()
    assert stored(first) == {"partial": [f"{original}.1_3", f"{original}.3_3"]}
    await first.runner.cleanup()  # "restart": a new app on the same spool

    second = await start_server(spool_root=root)
    assert await push(crec, second, f"{original}.2_3", blocks[1]) == 0
    await second.drain()
    assert stored(second) == {"inbox": [original]}
    assert bz2.decompress((second.folder("CREC", SpoolState.INBOX) / original).read_bytes()) == data
    # A late duplicate of a block does not rebuild (or duplicate) the file.
    assert await push(crec, second, f"{original}.2_3", blocks[1]) == 0
    await second.drain()
    assert stored(second) == {"inbox": [original]}
    assert second.ledger.received("CREC", original) is not None
    assert len(second.ledger.unconfirmed("CREC")) == 1


async def test_unexpected_error_is_server_generico(node: Node, crec) -> None:
    def broken(spool, peer):
        raise RuntimeError("simulated bug")

    node.state.inbound_store = broken
    answer = await dime_call(crec, node.url, push_message(NAME, b"data"))
    assert answer.status == 500
    assert answer.fault_code == "Server.Generico"
    assert "simulated" not in answer.envelope.fault.string  # internals stay in the log
    assert (await soap_call(crec, node.url, PeticionFechaHora().to_xml())).status == 200

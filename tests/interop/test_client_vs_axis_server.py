"""Our client (``concentrador collect`` / ``push``) against a real Apache Axis 1.4 server.

The server is ``CpcsccAxisServer``: Axis 1.4's ``SimpleAxisServer`` with a
minimal CPCSCC service (``CpcsccAxisService``), given a JSSE server socket
that requires client certificates, so the leg runs over real mutual TLS with
the dev PKI. It is what makes our client face Axis's server-side wire habits
(CPCSCC.md §10): HTTP/1.0 answers with no Content-Length (the body ends at
close), ``Set-Cookie: <n>`` / ``Set-Cookie2: <n>`` sessions, faults with
HTTP 500, 1 MiB-chunked DIME records above 1 MiB, and no support at all for
HTTP-chunked requests (so uploads must carry a Content-Length).

The Axis side logs one ``key=value`` line per event; the tests assert on
that log and on both spools. The CLI runs as an operator would run it.
"""

from __future__ import annotations

import bz2
import socket
import ssl
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from concentrador.protocol.messages import RecogerFichero
from concentrador.protocol.soap import build_envelope
from tests.interop.axis import AxisToolchain
from tests.interop.axis_wire import walk_physical_records
from tests.interop.conftest import (
    LiveJavaServer,
    free_port,
    incompressible_bzip2,
    md5_of,
    po1011_text,
    run_cli,
    start_java_server,
)
from tests.interop.pki_java import java_tls

pytestmark = pytest.mark.interop

MIB = 1024 * 1024
BLOCK_SIZE = 1_500_000
CREC_DN = "CN=crec-client-1,CN=CREC,OU=Concentradores,O=REE,C=es"
OUR_CLIENT_DN = "CN=0086-client-1;CN=0086;OU=Concentradores;O=REE;C=es"  # as the Axis log writes it
CLI_TIMEOUT = 120

SMALL_CUR = "F1_0086_20240601_20240602.0.bz2"
SMALL_INC = "I1_0086_20240601.0.bz2"
LARGE = "F5_0086_20240601.0.bz2"  # one file above 1 MiB: Axis sends 2 chunked DIME records
SPLIT = "P1_0086_20240601.0.bz2"  # published by Axis as 3 blocks
PUSHED = "P1_0086_20240801.0.bz2"  # pushed by us, cut into 3 blocks


@dataclass(frozen=True)
class Originals:
    small_cur: bytes
    small_inc: bytes
    large: bytes
    split: bytes
    pushed: bytes

    def collected(self) -> dict[str, bytes]:
        return {
            SMALL_CUR: self.small_cur,
            SMALL_INC: self.small_inc,
            LARGE: self.large,
            SPLIT: self.split,
        }


@dataclass(frozen=True)
class Leg:
    axis_server: LiveJavaServer
    axis_state: Path
    spool: Path
    originals: Originals
    collect: subprocess.CompletedProcess[str]
    push: subprocess.CompletedProcess[str]
    raw_large_answer: bytes
    collect_lines: tuple[int, int]
    """Which Axis log lines the collect cycle wrote (before: the raw fetch; after: the push)."""

    def requests(self, *, phase: str) -> list[dict[str, str]]:
        """The Axis ``request=`` lines of the collect or the push phase, as dicts."""
        lines = self.axis_server.log_path.read_text().splitlines()
        start, end = self.collect_lines
        part = lines[start:end] if phase == "collect" else lines[end:]
        parsed = []
        for line in part:
            if line.startswith("request="):
                fields = dict(item.split("=", 1) for item in line.split(","))
                parsed.append(fields)
        return parsed


def bz2_text(rows: int, seed: int) -> bytes:
    return bz2.compress(po1011_text(rows, seed))


def raw_recoger(port: int, pki: Path, name: str) -> bytes:
    """One recogerFichero over a bare TLS socket: the Axis answer exactly as sent.

    Read until the server closes, since SimpleAxisServer sends no Content-Length.
    """
    body = build_envelope(RecogerFichero(name).to_xml(), concentrador_id="0086")
    head = (
        "POST /axis/services/cpcscc HTTP/1.0\r\nHost: localhost\r\n"
        'Content-Type: text/xml; charset=utf-8\r\nSOAPAction: "recogerFichero"\r\n'
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    context = ssl.create_default_context(cafile=str(pki / "ca.pem"))
    context.load_cert_chain(str(pki / "client.pem"), str(pki / "client.key"))
    received = bytearray()
    with (
        socket.create_connection(("localhost", port), timeout=30) as raw,
        context.wrap_socket(raw, server_hostname="localhost") as tls,
    ):
        tls.sendall(head.encode("ascii") + body)
        while piece := tls.recv(65536):
            received += piece
    return bytes(received)


def publish_on_axis(state: Path, originals: Originals) -> None:
    """The Axis server's ``published/<TYPE>/`` folders: whole files and one split file."""
    cur, inc = state / "published" / "CUR", state / "published" / "INC"
    cur.mkdir(parents=True)
    inc.mkdir(parents=True)
    (cur / SMALL_CUR).write_bytes(originals.small_cur)
    (inc / SMALL_INC).write_bytes(originals.small_inc)
    (cur / LARGE).write_bytes(originals.large)
    for k, start in enumerate(range(0, len(originals.split), BLOCK_SIZE), 1):
        (cur / f"{SPLIT}.{k}_3").write_bytes(originals.split[start : start + BLOCK_SIZE])


def write_config(path: Path, pki: Path, spool: Path, axis_port: int) -> Path:
    path.write_text(
        f'[node]\nid = "0086"\nspool = "{spool}"\ntimezone = "Europe/Madrid"\n'
        f"block_size = {BLOCK_SIZE}\n\n"
        f'[server]\nlisten = "127.0.0.1:0"\ncert = "{pki}/server.pem"\n'
        f'key = "{pki}/server.key"\nclient_ca = "{pki}/ca.pem"\n\n'
        '[admin]\nlisten = "127.0.0.1:0"\n\n'
        f'[client]\ncert = "{pki}/client.pem"\nkey = "{pki}/client.key"\n'
        f'ca = "{pki}/ca.pem"\ntimeout = 30\nretries = 0\nretry_delay = 0\n\n'
        f'[[peers]]\nid = "CREC"\ndn = ["{CREC_DN}"]\n'
        f'url = "https://localhost:{axis_port}/axis/services/cpcscc"\n'
        # Axis clients and servers use the bare operation name (CPCSCC.md §10).
        f'soap_action = "{{operation}}"\ndeliver = "push"\n'
    )
    return path


def cli(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return run_cli(config, *args, timeout=CLI_TIMEOUT)


@pytest.fixture(scope="module")
def leg(
    axis: AxisToolchain, dev_pki: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Leg]:
    tmp = tmp_path_factory.mktemp("client-vs-axis")
    originals = Originals(
        small_cur=bz2_text(300, seed=11),
        small_inc=bz2_text(40, seed=12),
        large=incompressible_bzip2(MIB + 600_000, seed=13),
        split=incompressible_bzip2(3_200_000, seed=14),
        pushed=incompressible_bzip2(3_200_000, seed=15),
    )
    axis_state = tmp / "axis-state"
    publish_on_axis(axis_state, originals)
    spool = tmp / "spool"
    with start_java_server(
        axis,
        "CpcsccAxisServer",
        [str(free_port()), str(axis_state)],
        jvm_options=java_tls(dev_pki, "server").jvm_options(),
        log_path=tmp / "axis-server.log",
    ) as server:
        raw_large_answer = raw_recoger(server.port, dev_pki, LARGE)
        config = write_config(tmp / "concentrador.toml", dev_pki, spool, server.port)
        start = len(server.log_path.read_text().splitlines())
        collect = cli(config, "collect", "CREC")
        end = len(server.log_path.read_text().splitlines())
        outbox = spool / "CREC" / "outbox"
        outbox.mkdir(parents=True, exist_ok=True)
        (outbox / PUSHED).write_bytes(originals.pushed)
        push = cli(config, "push", "CREC")
        yield Leg(
            server, axis_state, spool, originals, collect, push, raw_large_answer, (start, end)
        )


def test_axis_answers_http10_close_delimited_with_chunked_dime_records(leg: Leg) -> None:
    # What our client had to cope with for LARGE (checked with independent code).
    head, _, body = leg.raw_large_answer.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = [line.split(":", 1)[0].lower() for line in lines[1:]]
    assert lines[0].startswith("HTTP/1.0 200")
    assert "content-length" not in headers
    assert {"set-cookie", "set-cookie2"} <= set(headers)
    records = walk_physical_records(body)
    assert [r.chunked for r in records] == [False, True, False]
    assert [r.type_format for r in records] == [2, 1, 0]
    assert records[1].data_length == MIB
    assert records[1].data_length + records[2].data_length == len(leg.originals.large)


def test_collect_succeeds(leg: Leg) -> None:
    assert leg.collect.returncode == 0, leg.collect.stderr[-3000:]


def test_collect_fetched_verified_and_reassembled_everything(leg: Leg) -> None:
    inbox = leg.spool / "CREC" / "inbox"
    stored = {path.name: path.read_bytes() for path in inbox.iterdir() if path.is_file()}
    assert stored == leg.originals.collected()


def test_axis_served_the_large_file_and_every_block(leg: Leg) -> None:
    served = {line.split(",")[0] for line in leg.axis_server.events("served")}
    blocks = {f"{SPLIT}.{k}_3" for k in (1, 2, 3)}
    assert served == {SMALL_CUR, SMALL_INC, LARGE, *blocks}
    assert len(leg.originals.large) > MIB  # so Axis chunked its DIME record


def test_axis_logged_exactly_one_confirmation_per_original_file(leg: Leg) -> None:
    confirmations = leg.axis_server.events("confirm")
    assert sorted(confirmations) == sorted(f"{name},0" for name in leg.originals.collected())
    # Everything Axis published is now delivered: nothing left to collect.
    assert not [p for p in (leg.axis_state / "published").rglob("*") if p.is_file()]


def test_collect_used_mutual_tls_with_our_client_certificate(leg: Leg) -> None:
    subjects = set(leg.axis_server.events("tls_client"))
    assert subjects == {OUR_CLIENT_DN}


def test_collect_calls_carry_our_header_and_soap_action(leg: Leg) -> None:
    requests = leg.requests(phase="collect")
    operations = {r["request"] for r in requests}
    fetch_cycle = {"informacionDisponible", "recogerFichero", "confirmacionRecepcionFichero"}
    # The cycle may also ask the peer's time (clock check, CPCSCC.md §9); it never pushes.
    assert fetch_cycle <= operations <= fetch_cycle | {"peticionFechaHora"}
    assert all(r["concentrador"] == "0086" for r in requests)
    assert all(r["soapaction"] == r["request"] for r in requests)


def test_collect_kept_the_axis_session_cookie(leg: Leg) -> None:
    # SimpleAxisServer answers "Set-Cookie: 0" (a bare value, no name=) and
    # only recognises the same bare value sent back; one session number for
    # the whole cycle proves our client returned it on every call.
    sessions = {r["session"] for r in leg.requests(phase="collect")}
    assert len(sessions) == 1


def test_push_succeeds(leg: Leg) -> None:
    assert leg.push.returncode == 0, leg.push.stderr[-3000:]


def test_push_delivered_the_large_file_block_by_block(leg: Leg) -> None:
    received = [line.split(",") for line in leg.axis_server.events("received")]
    names = [f"{PUSHED}.{k}_3" for k in (1, 2, 3)]
    assert sorted(r[0] for r in received) == names
    assert all(r[3] == "0" for r in received)  # codigo 0, MD5 verified by Axis
    blocks = [(leg.axis_state / "inbox" / name).read_bytes() for name in names]
    assert [len(b) for b in blocks[:2]] == [BLOCK_SIZE, BLOCK_SIZE]
    assert b"".join(blocks) == leg.originals.pushed
    assert {r[2] for r in received} == {md5_of(b) for b in blocks}


def test_push_uploads_carry_a_content_length(leg: Leg) -> None:
    # SimpleAxisServer cannot read HTTP-chunked requests (CPCSCC.md §10).
    uploads = [r for r in leg.requests(phase="push") if r["request"] == "enviarFichero"]
    assert len(uploads) == 3
    assert all(int(r["content_length"]) > BLOCK_SIZE // 10 for r in uploads)
    assert sum(int(r["content_length"]) for r in uploads) > len(leg.originals.pushed)


def test_pushed_blocks_are_delivered_in_our_spool(leg: Leg) -> None:
    delivered = {p.name for p in (leg.spool / "CREC" / "delivered").iterdir()}
    assert {f"{PUSHED}.{k}_3" for k in (1, 2, 3)} <= delivered
    assert not list((leg.spool / "CREC" / "sending").iterdir())

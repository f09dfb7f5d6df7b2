"""Shared helpers of the daemon tests: configs, TLS clients, SOAP calls."""

from __future__ import annotations

import asyncio
import hashlib
import re
import socket
import ssl
import time
from collections.abc import Callable, Iterable
from pathlib import Path

import aiohttp

from concentrador.protocol.dime import iter_message
from concentrador.protocol.messages import (
    EnviarFichero,
    EnviarFicheroResponse,
    Fichero,
    PeticionFechaHora,
)
from concentrador.protocol.soap import build_envelope

CREC_DN = "CN=crec-client-1,CN=CREC,OU=Concentradores,O=REE,C=es"
OTRO_DN = "CN=otro-client-1,CN=OTRO,OU=Concentradores,O=REE,C=es"


def peer_block(peer_id: str, dn: str, extra: str = "") -> str:
    return f'[[peers]]\nid = "{peer_id}"\ndn = ["{dn}"]\n{extra}'


def config_text(
    pki: Path,
    spool: Path,
    *,
    port: int = 0,
    peers: Iterable[str] = (),
    crl: bool = True,
) -> str:
    blocks = list(peers) or [peer_block("CREC", CREC_DN)]
    crl_line = f'crl = "{pki}/ca.crl"\n' if crl else ""
    return (
        f'[node]\nid = "0086"\nspool = "{spool}"\ntimezone = "Europe/Madrid"\n\n'
        f'[server]\nlisten = "127.0.0.1:{port}"\ncert = "{pki}/server.pem"\n'
        f'key = "{pki}/server.key"\nclient_ca = "{pki}/ca.pem"\n{crl_line}\n'
        # Any free port for the console: daemons of parallel tests must not collide.
        '[admin]\nlisten = "127.0.0.1:0"\n\n' + "\n".join(blocks)
    )


def write_config(path: Path, text: str) -> Path:
    # Replace atomically: a SIGHUP racing the write must not read half a file.
    tmp = path.with_name(path.name + ".new")
    tmp.write_text(text)
    tmp.replace(path)
    return path


def client_context(pki: Path, stem: str = "CREC-client") -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(pki / "ca.pem"))
    ctx.load_cert_chain(str(pki / f"{stem}.pem"), str(pki / f"{stem}.key"))
    return ctx


def fecha_hora_envelope(peer_id: str = "CREC") -> bytes:
    return build_envelope(PeticionFechaHora().to_xml(), concentrador_id=peer_id)


async def call_fecha_hora(url: str, ctx: ssl.SSLContext, peer_id: str = "CREC") -> tuple[int, str]:
    """POST peticionFechaHora on a fresh connection; (HTTP status, body)."""
    connector = aiohttp.TCPConnector(ssl=ctx, force_close=True)
    async with (
        aiohttp.ClientSession(connector=connector) as session,
        session.post(
            url,
            data=fecha_hora_envelope(peer_id),
            headers={"Content-Type": "text/xml; charset=utf-8"},
        ) as response,
    ):
        return response.status, await response.text()


def enviar_message(name: str, payload: bytes, peer_id: str = "CREC") -> bytes:
    md5 = hashlib.md5(payload).hexdigest()
    envelope = build_envelope(EnviarFichero(Fichero(name, md5)).to_xml(), concentrador_id=peer_id)
    return b"".join(bytes(p) for p in iter_message(envelope, len(payload), [payload]))


def enviar_codigo(body: bytes) -> int:
    from concentrador.protocol.soap import parse_envelope

    envelope = parse_envelope(body)
    return EnviarFicheroResponse.from_xml(envelope.body_elements[0]).codigo


def wait_until(predicate: Callable[[], bool], timeout: float, interval: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


async def async_wait_until(
    predicate: Callable[[], bool], timeout: float, interval: float = 0.05
) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        await asyncio.sleep(interval)
    return predicate()


def port_accepts(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


_URL = re.compile(r"listening on (https?://([0-9.]+):([0-9]+)/)")


def url_from_status(datagram: str) -> tuple[str, str, int]:
    match = _URL.search(datagram)
    assert match, f"no listening URL in {datagram!r}"
    return match[1], match[2], int(match[3])

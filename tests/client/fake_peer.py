"""A scriptable CPCSCC peer for client tests, built on our protocol core.

It speaks the protocol well enough to be collected from and pushed to, and
misbehaves on demand: wrong checksums, vanishing files, connections dropped
mid-DIME, lost confirmations, scripted enviarFichero answers and faults.
Plain HTTP on loopback: what is under test here is the client's handling of
the peer's answers, not TLS (the own-server tests cover TLS).
"""

from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import dataclass, field

from aiohttp import web

from concentrador.protocol.dime import DimeMessageWriter, read_message
from concentrador.protocol.faults import Fault
from concentrador.protocol.messages import (
    ConfirmacionRecepcionFichero,
    ConfirmacionRecepcionFicheroResponse,
    DatosFichero,
    EnviarFichero,
    EnviarFicheroResponse,
    Fichero,
    InformacionDisponibleResponse,
    PeticionFechaHoraResponse,
    RecogerFichero,
    RecogerFicheroResponse,
    TipoFichero,
)
from concentrador.protocol.soap import build_envelope, parse_envelope
from concentrador.protocol.xmlparse import local_name

__all__ = ["FakePeer"]


@dataclass
class FakePeer:
    files: dict[str, bytes] = field(default_factory=dict)
    bad_checksum: dict[str, int] = field(default_factory=dict)
    """name -> how many answers carry a wrong checksum (-1: all)."""
    vanish: set[str] = field(default_factory=set)
    drop_mid_dime: dict[str, int] = field(default_factory=dict)
    """name -> how many answers are cut in the middle of the attachment."""
    lose_confirmation: dict[str, int] = field(default_factory=dict)
    """name -> how many confirmations are dropped without an answer (not applied)."""
    push_script: list[int | Fault] = field(default_factory=list)
    """Answers to enviarFichero, in order (then 0)."""
    fecha_hora: object = None
    auth_fault_on: set[str] = field(default_factory=set)
    """Operations answered with Client.Autenticacion."""
    # What happened:
    fetches: Counter[str] = field(default_factory=Counter)
    confirmations: list[tuple[str, int]] = field(default_factory=list)
    pushed: list[tuple[str, bytes]] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    ids: list[str | None] = field(default_factory=list)

    def app(self) -> web.Application:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_post("/{tail:.*}", self.handle)
        return app

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.headers.append(dict(request.headers))
        raw = await request.read()
        if request.content_type == "application/dime":
            records = read_message(raw)
            envelope, payload = records[0].data, records[1].data
        else:
            envelope, payload = raw, b""
        parsed = parse_envelope(envelope)
        self.ids.append(parsed.concentrador_id)
        operation = local_name(parsed.body_elements[0]) if parsed.body_elements else ""
        if operation in self.auth_fault_on:
            return self.fault(Fault("Client.Autenticacion", "who are you?"))
        if operation == "peticionFechaHora":
            return self.soap(PeticionFechaHoraResponse(self.fecha_hora).to_xml())
        if operation == "informacionDisponible":
            datos = tuple(DatosFichero.for_size(n, len(d)) for n, d in sorted(self.files.items()))
            tipos = (TipoFichero("CUR", datos),)
            return self.soap(InformacionDisponibleResponse(tipos).to_xml())
        if operation == "recogerFichero":
            return await self.recoger(request, RecogerFichero.from_xml(parsed.body_elements))
        if operation == "confirmacionRecepcionFichero":
            return self.confirmar(
                request, ConfirmacionRecepcionFichero.from_xml(parsed.body_elements)
            )
        if operation == "enviarFichero":
            message = EnviarFichero.from_xml(parsed.body_elements)
            return self.enviar(message, payload)
        return self.fault(Fault("Client", f"unknown operation {operation}"))

    def soap(self, body: object) -> web.Response:
        return web.Response(
            body=build_envelope(body), content_type="text/xml", charset="utf-8",  # type: ignore[arg-type]
            headers={"Set-Cookie": "JSESSIONID=abc123; Path=/"},
        )  # fmt: skip

    def fault(self, fault: Fault) -> web.Response:
        return web.Response(status=500, body=fault.to_envelope(), content_type="text/xml")

    async def recoger(self, request: web.Request, message: RecogerFichero) -> web.StreamResponse:
        name = message.nombre_fichero
        self.fetches[name] += 1
        if name in self.vanish or name not in self.files:
            return self.fault(Fault("Client.Fichero", f"{name} is not available", "no"))
        data = self.files[name]
        md5 = hashlib.md5(data).hexdigest()
        bad = self.bad_checksum.get(name, 0)
        if bad:
            md5 = "0" * 32
            self.bad_checksum[name] = bad - 1 if bad > 0 else -1
        envelope = build_envelope(RecogerFicheroResponse(Fichero(name, md5)).to_xml())
        writer = DimeMessageWriter(envelope, len(data))
        response = web.StreamResponse(headers={"Content-Type": "application/dime"})
        response.content_length = writer.total_length
        await response.prepare(request)
        await response.write(writer.begin())
        if self.drop_mid_dime.get(name, 0):
            self.drop_mid_dime[name] -= 1
            await response.write(data[: len(data) // 2])
            assert request.transport is not None
            request.transport.close()
            return response
        for part in writer.write(data):
            await response.write(bytes(part))
        await response.write(writer.end())
        await response.write_eof()
        return response

    def confirmar(
        self, request: web.Request, message: ConfirmacionRecepcionFichero
    ) -> web.StreamResponse:
        name = message.nombre_fichero
        if self.lose_confirmation.get(name, 0):
            self.lose_confirmation[name] -= 1
            assert request.transport is not None
            request.transport.close()
            raise ConnectionResetError("confirmation lost")
        self.confirmations.append((name, message.cod_confirmacion))
        blocks = [n for n in self.files if n.startswith(name + ".") and "_" in n]
        published = name in self.files or bool(blocks)
        if published and message.cod_confirmacion == 0:
            for listed in [name, *blocks]:
                self.files.pop(listed, None)
        return self.soap(ConfirmacionRecepcionFicheroResponse(0 if published else 1).to_xml())

    def enviar(self, message: EnviarFichero, payload: bytes) -> web.Response:
        self.pushed.append((message.fichero.nombre, payload))
        answer = self.push_script.pop(0) if self.push_script else 0
        if isinstance(answer, Fault):
            return self.fault(answer)
        if not message.fichero.matches(hashlib.md5(payload).hexdigest()):
            answer = 1
        return self.soap(EnviarFicheroResponse(answer).to_xml())

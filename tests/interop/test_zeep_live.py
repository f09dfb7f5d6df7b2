"""zeep (a generic WSDL-driven SOAP stack) against our running server, over mutual TLS.

zeep learns everything from ``GET https://localhost:PORT/?wsdl`` served by
``concentrador serve``: the operations, the messages and the endpoint
address. Its ``requests`` session presents CREC's client certificate and
trusts only the dev CA. The answers are checked against what the server
actually holds in its spool, not against canned values.
"""

from __future__ import annotations

import bz2
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import requests
import zeep
import zeep.exceptions
from zeep.transports import Transport

from tests.interop.conftest import (
    LiveConcentrador,
    free_port,
    po1011_text,
    publish_outbox_now,
    serve_concentrador,
)

pytestmark = pytest.mark.interop

CREC_DN = "CN=crec-client-1,CN=CREC,OU=Concentradores,O=REE,C=es"
HEADER = {"Concentrador": {"id": "CREC"}}
CUR_FILE = "F1_0086_20240601_20240602.0.bz2"
INC_FILE = "I1_0086_20240601.0.bz2"
# CPCSCC.md §7 order, written out here rather than imported from the code under test.
ALL_TYPES = [
    "CUR", "PTE", "PTF", "TAR", "INC", "OBJ", "ROB", "FIR", "AGR", "MAG",
    "INV", "DIS", "RIS", "NOS", "OSI", "OSP", "OSA", "OSG", "OSE", "OSD",
]  # fmt: skip


@dataclass(frozen=True)
class ZeepLeg:
    server: LiveConcentrador
    client: zeep.Client
    published: Path
    delivered: Path

    def held(self) -> dict[str, int]:
        """Name → size in KiB (rounded up) of what the server publishes for CREC now."""
        return {p.name: -(-p.stat().st_size // 1024) for p in self.published.iterdir()}


def listing(client: zeep.Client, *types: str) -> list[tuple[str, list[tuple[str, int]]]]:
    answer: Any = client.service.informacionDisponible(
        listaTipos={"TipoFichero": [{"id": t} for t in types]}, _soapheaders=HEADER
    )
    return [(t.id, [(d.nombre, d.longitud) for d in t.DatosFichero]) for t in answer]


@pytest.fixture(scope="module")
def leg(dev_pki: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ZeepLeg]:
    tmp = tmp_path_factory.mktemp("zeep-live")
    spool, port = tmp / "spool", free_port()
    config = tmp / "concentrador.toml"
    config.write_text(
        f'[node]\nid = "0086"\nspool = "{spool}"\ntimezone = "Europe/Madrid"\n\n'
        f'[server]\nlisten = "127.0.0.1:{port}"\ncert = "{dev_pki}/server.pem"\n'
        f'key = "{dev_pki}/server.key"\nclient_ca = "{dev_pki}/ca.pem"\n\n'
        '[admin]\nlisten = "127.0.0.1:0"\n\n'
        f'[[peers]]\nid = "CREC"\ndn = ["{CREC_DN}"]\n'
    )
    outbox = spool / "CREC" / "outbox"
    (outbox / "INC").mkdir(parents=True)
    (outbox / CUR_FILE).write_bytes(bz2.compress(po1011_text(3000, seed=21)))
    (outbox / "INC" / INC_FILE).write_bytes(bz2.compress(po1011_text(20, seed=22)))
    publish_outbox_now(config)
    with serve_concentrador(config, port, dev_pki) as server, requests.Session() as session:
        session.cert = (str(dev_pki / "CREC-client.pem"), str(dev_pki / "CREC-client.key"))
        session.verify = str(dev_pki / "ca.pem")
        # Otherwise $REQUESTS_CA_BUNDLE silently replaces session.verify
        # (psf/requests#3829) and a proxy from the environment may capture loopback.
        session.trust_env = False
        client = zeep.Client(f"{server.url}?wsdl", transport=Transport(session=session))
        yield ZeepLeg(server, client, spool / "CREC" / "published", spool / "CREC" / "delivered")


def test_wsdl_fetched_live_points_zeep_at_the_server(leg: ZeepLeg) -> None:
    assert leg.client.service._binding_options["address"] == leg.server.url


def test_peticion_fecha_hora(leg: ZeepLeg) -> None:
    answer = leg.client.service.peticionFechaHora(_soapheaders=HEADER)
    answered = datetime.strptime(answer, "%d/%m/%Y %H:%M:%S")
    madrid = datetime.now(ZoneInfo("Europe/Madrid")).replace(tzinfo=None)
    assert abs((madrid - answered).total_seconds()) < 120


def test_informacion_disponible_matches_the_spool(leg: ZeepLeg) -> None:
    held = leg.held()
    assert set(held) == {CUR_FILE, INC_FILE}
    answer = dict(listing(leg.client, "TOD"))
    assert list(answer) == ALL_TYPES
    assert answer["CUR"] == [(CUR_FILE, held[CUR_FILE])]
    assert answer["INC"] == [(INC_FILE, held[INC_FILE])]
    assert all(not files for t, files in answer.items() if t not in ("CUR", "INC"))


def test_informacion_disponible_tod_with_another_type_is_a_client_tod_fault(
    leg: ZeepLeg,
) -> None:
    with pytest.raises(zeep.exceptions.Fault) as fault:
        listing(leg.client, "TOD", "CUR")
    assert fault.value.code is not None
    assert fault.value.code.rpartition(":")[2] == "Client.TOD"


def test_confirmation_of_a_published_file(leg: ZeepLeg) -> None:
    assert INC_FILE in leg.held()
    codigo = leg.client.service.confirmacionRecepcionFichero(
        nombreFichero=INC_FILE, codConfirmacion=0, _soapheaders=HEADER
    )
    assert codigo == 0
    assert INC_FILE not in leg.held()
    assert (leg.delivered / INC_FILE).is_file()
    assert dict(listing(leg.client, "INC"))["INC"] == []


def test_confirmation_of_an_unknown_file_is_answered_1(leg: ZeepLeg) -> None:
    before = leg.held()
    codigo = leg.client.service.confirmacionRecepcionFichero(
        nombreFichero="F1_0086_20990101_20990102.0.bz2", codConfirmacion=0, _soapheaders=HEADER
    )
    assert codigo == 1
    assert leg.held() == before

"""Property: every message survives to_xml → envelope → parse → from_xml, in both SOAP versions."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from concentrador.protocol.dispatch import Operation, identify_operation
from concentrador.protocol.filetypes import TYPE_IDS
from concentrador.protocol.messages import (
    ConfirmacionRecepcionFichero,
    ConfirmacionRecepcionFicheroResponse,
    DatosFichero,
    EnviarFichero,
    EnviarFicheroResponse,
    Fichero,
    InformacionDisponible,
    InformacionDisponibleResponse,
    PeticionFechaHora,
    PeticionFechaHoraResponse,
    RecogerFichero,
    RecogerFicheroResponse,
    TipoFichero,
    WireMessage,
)
from concentrador.protocol.soap import SoapVersion, build_envelope, parse_envelope

# Text XML can carry, without the surrounding whitespace a liberal reader trims.
texts = (
    st.text(
        alphabet=st.characters(codec="utf-8", exclude_categories=("Cs", "Cc", "Cn")),
        min_size=1,
        max_size=40,
    )
    .map(str.strip)
    .filter(bool)
)
md5s = st.text(alphabet="0123456789abcdefABCDEF", min_size=32, max_size=32)
codes = st.integers(min_value=-(10**9), max_value=10**9)
type_ids = st.sampled_from(TYPE_IDS) | texts
ficheros = st.builds(Fichero, texts, md5s)
datos = st.builds(DatosFichero, texts, st.integers(min_value=0, max_value=10**11))
tipos = st.builds(TipoFichero, type_ids, st.lists(datos, max_size=4).map(tuple))

messages: st.SearchStrategy[WireMessage] = st.one_of(
    st.just(PeticionFechaHora()),
    st.builds(PeticionFechaHoraResponse, st.datetimes().map(lambda d: d.replace(microsecond=0))),
    st.builds(InformacionDisponible, st.lists(type_ids, max_size=6).map(tuple)),
    st.builds(InformacionDisponibleResponse, st.lists(tipos, max_size=5).map(tuple)),
    st.builds(RecogerFichero, texts),
    st.builds(RecogerFicheroResponse, st.none() | ficheros),
    st.builds(ConfirmacionRecepcionFichero, texts, codes),
    st.builds(ConfirmacionRecepcionFicheroResponse, codes),
    st.builds(EnviarFichero, ficheros),
    st.builds(EnviarFicheroResponse, codes),
)

REQUESTS = {
    PeticionFechaHora: Operation.PETICION_FECHA_HORA,
    InformacionDisponible: Operation.INFORMACION_DISPONIBLE,
    RecogerFichero: Operation.RECOGER_FICHERO,
    ConfirmacionRecepcionFichero: Operation.CONFIRMACION_RECEPCION_FICHERO,
    EnviarFichero: Operation.ENVIAR_FICHERO,
}


@given(message=messages)
def test_element_round_trip(message: WireMessage) -> None:
    assert type(message).from_xml(message.to_xml()) == message


@given(message=messages, version=st.sampled_from(SoapVersion), concentrador_id=texts)
def test_envelope_round_trip(
    message: WireMessage, version: SoapVersion, concentrador_id: str
) -> None:
    data = build_envelope(message.to_xml(), version=version, concentrador_id=concentrador_id)
    envelope = parse_envelope(data)
    assert envelope.version is version
    assert envelope.concentrador_id == concentrador_id
    assert type(message).from_xml(envelope.body) == message
    operation = REQUESTS.get(type(message))
    if operation is not None:
        # No SOAPAction: the wrapper alone must identify every request.
        assert identify_operation(envelope, None, operation.request_has_attachment) is operation
        assert operation.request_type is type(message)

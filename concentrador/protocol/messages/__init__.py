"""Request/response models of the five CPCSCC operations (CPCSCC.md §4).

Each model has ``to_xml()`` (strict: exactly the reference shape, ``cp``
prefix) and ``from_xml(source)`` (liberal: local names, any namespace, with
or without the wrapper, unknown elements ignored). Class and field names
keep the protocol's Spanish vocabulary because they *are* the wire edge.
"""

from concentrador.protocol.messages.common import (
    CP_NAMESPACE,
    CP_PREFIX,
    MessageError,
    MessageSource,
    WireMessage,
)
from concentrador.protocol.messages.confirmacion import (
    ConfirmacionRecepcionFichero,
    ConfirmacionRecepcionFicheroResponse,
    ConfirmationCode,
    ConfirmationResult,
)
from concentrador.protocol.messages.enviar import EnviarFichero, EnviarFicheroResponse, PushResult
from concentrador.protocol.messages.fecha_hora import (
    WIRE_DATETIME_FORMAT,
    PeticionFechaHora,
    PeticionFechaHoraResponse,
    format_wire_datetime,
    parse_wire_datetime,
)
from concentrador.protocol.messages.fichero import Fichero, read_fichero
from concentrador.protocol.messages.frames import (
    confirmacion_request,
    recoger_request,
    recoger_response,
)
from concentrador.protocol.messages.informacion import (
    MAX_REQUESTED_TYPES,
    DatosFichero,
    InformacionDisponible,
    InformacionDisponibleResponse,
    TipoFichero,
    TodMixError,
    size_in_kb,
)
from concentrador.protocol.messages.listing import ListedFile, listable_name, listing_envelope
from concentrador.protocol.messages.recoger import RecogerFichero, RecogerFicheroResponse
from concentrador.protocol.messages.wsdl import (
    PLACEHOLDER_LOCATION,
    WsdlError,
    load_wsdl,
    render_wsdl,
)

__all__ = [
    "CP_NAMESPACE",
    "CP_PREFIX",
    "MAX_REQUESTED_TYPES",
    "PLACEHOLDER_LOCATION",
    "WIRE_DATETIME_FORMAT",
    "ConfirmacionRecepcionFichero",
    "ConfirmacionRecepcionFicheroResponse",
    "ConfirmationCode",
    "ConfirmationResult",
    "DatosFichero",
    "EnviarFichero",
    "EnviarFicheroResponse",
    "Fichero",
    "InformacionDisponible",
    "InformacionDisponibleResponse",
    "ListedFile",
    "MessageError",
    "MessageSource",
    "PeticionFechaHora",
    "PeticionFechaHoraResponse",
    "PushResult",
    "RecogerFichero",
    "RecogerFicheroResponse",
    "TipoFichero",
    "TodMixError",
    "WireMessage",
    "WsdlError",
    "confirmacion_request",
    "format_wire_datetime",
    "listable_name",
    "listing_envelope",
    "load_wsdl",
    "parse_wire_datetime",
    "read_fichero",
    "recoger_request",
    "recoger_response",
    "render_wsdl",
    "size_in_kb",
]

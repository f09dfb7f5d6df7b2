"""Picking the operation of a request (CPCSCC.md §1, Decision "dispatch").

A server must not depend on SOAPAction, and some document-style clients send
bare parameters with no wrapper, so the operation is found by these rules,
in order:

1. the local name of the first Body element, when it names an operation;
2. otherwise the SOAPAction: a bare name, ``urn:op`` or ``.../op``, quoted
   or not;
3. otherwise the parameters: ``listaTipos`` is informacionDisponible,
   ``nombreFichero`` with ``codConfirmacion`` is confirmacionRecepcionFichero,
   ``nombreFichero`` alone is recogerFichero, ``Fichero`` with an attachment
   is enviarFichero, and an empty Body is peticionFechaHora.

Names are compared case-insensitively, like every liberal read in the core.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import ClassVar

from lxml import etree

from concentrador.protocol.errors import ProtocolError
from concentrador.protocol.messages import (
    ConfirmacionRecepcionFichero,
    ConfirmacionRecepcionFicheroResponse,
    EnviarFichero,
    EnviarFicheroResponse,
    InformacionDisponible,
    InformacionDisponibleResponse,
    PeticionFechaHora,
    PeticionFechaHoraResponse,
    RecogerFichero,
    RecogerFicheroResponse,
    WireMessage,
)
from concentrador.protocol.soap import Envelope
from concentrador.protocol.xmlparse import child_elements, local_name

__all__ = [
    "Operation",
    "UnknownOperationError",
    "identify_operation",
    "operation_from_soap_action",
    "read_request",
]


class UnknownOperationError(ProtocolError):
    """No dispatch rule identifies the request's operation."""

    fault_code: ClassVar[str] = "Client"
    fault_from_body: ClassVar[bool] = True


class Operation(StrEnum):
    """The five CPCSCC operations; the value is the wire name."""

    PETICION_FECHA_HORA = "peticionFechaHora"
    INFORMACION_DISPONIBLE = "informacionDisponible"
    RECOGER_FICHERO = "recogerFichero"
    CONFIRMACION_RECEPCION_FICHERO = "confirmacionRecepcionFichero"
    ENVIAR_FICHERO = "enviarFichero"

    @property
    def request_type(self) -> type[WireMessage]:
        return _MESSAGE_TYPES[self][0]

    @property
    def response_type(self) -> type[WireMessage]:
        return _MESSAGE_TYPES[self][1]

    @property
    def soap_action(self) -> str:
        """The default SOAPAction header value a client sends (§1 Decision)."""
        return f'"urn:{self.value}"'

    @property
    def request_has_attachment(self) -> bool:
        return self is Operation.ENVIAR_FICHERO

    @property
    def response_has_attachment(self) -> bool:
        return self is Operation.RECOGER_FICHERO


_MESSAGE_TYPES: dict[Operation, tuple[type[WireMessage], type[WireMessage]]] = {
    Operation.PETICION_FECHA_HORA: (PeticionFechaHora, PeticionFechaHoraResponse),
    Operation.INFORMACION_DISPONIBLE: (InformacionDisponible, InformacionDisponibleResponse),
    Operation.RECOGER_FICHERO: (RecogerFichero, RecogerFicheroResponse),
    Operation.CONFIRMACION_RECEPCION_FICHERO: (
        ConfirmacionRecepcionFichero,
        ConfirmacionRecepcionFicheroResponse,
    ),
    Operation.ENVIAR_FICHERO: (EnviarFichero, EnviarFicheroResponse),
}

_BY_LOWER_NAME = {operation.value.lower(): operation for operation in Operation}
_ACTION_SEPARATORS = re.compile(r"[/#:]")


def _operation_named(name: str) -> Operation | None:
    return _BY_LOWER_NAME.get(name.strip().lower())


def operation_from_soap_action(soap_action: str | None) -> Operation | None:
    """The operation a SOAPAction names, or ``None``.

    Accepts ``op``, ``"op"``, ``urn:op``, ``"urn:op"`` and ``http://.../op``
    (the last segment after ``/``, ``#`` or ``:`` is the name).
    """
    if soap_action is None:
        return None
    action = soap_action.strip()
    # Some stacks quote twice or put spaces inside the quotes.
    while len(action) >= 2 and action[0] == action[-1] and action[0] in "\"'":
        action = action[1:-1].strip()
    if not action:
        return None
    return _operation_named(_ACTION_SEPARATORS.split(action)[-1])


def _parameter_names(body_elements: list[etree._Element]) -> set[str]:
    # The Body's children and, for a wrapper we did not recognise, its
    # children too: enough to see bare parameters without a deep walk.
    names: set[str] = set()
    for element in body_elements:
        names.add(local_name(element).lower())
        names.update(local_name(child).lower() for child in child_elements(element))
    return names


def identify_operation(
    envelope: Envelope, soap_action: str | None, has_attachment: bool
) -> Operation:
    """Apply the §1 dispatch rules; raise :class:`UnknownOperationError`."""
    if envelope.fault is not None:
        raise UnknownOperationError("the request is a SOAP Fault, not an operation")
    first = envelope.first_body_element
    if first is not None:
        by_wrapper = _operation_named(local_name(first))
        if by_wrapper is not None:
            return by_wrapper
    by_action = operation_from_soap_action(soap_action)
    if by_action is not None:
        return by_action
    if not envelope.body_elements:
        return Operation.PETICION_FECHA_HORA
    names = _parameter_names(envelope.body_elements)
    if "listatipos" in names or "tipofichero" in names:
        return Operation.INFORMACION_DISPONIBLE
    if "nombrefichero" in names:
        if "codconfirmacion" in names:
            return Operation.CONFIRMACION_RECEPCION_FICHERO
        return Operation.RECOGER_FICHERO
    if "fichero" in names:
        if has_attachment:
            return Operation.ENVIAR_FICHERO
        raise UnknownOperationError(
            "the request carries a Fichero but no attachment; enviarFichero needs a DIME attachment"
        )
    shown = local_name(first) if first is not None else ""
    raise UnknownOperationError(
        f"cannot tell the operation: Body element <{shown[:80]}> names none of "
        f"{', '.join(op.value for op in Operation)}, and neither does the SOAPAction"
    )


def read_request(
    envelope: Envelope, soap_action: str | None, has_attachment: bool
) -> tuple[Operation, WireMessage]:
    """Identify the operation and read its request model from the Body."""
    operation = identify_operation(envelope, soap_action, has_attachment)
    return operation, operation.request_type.from_xml(envelope.body)

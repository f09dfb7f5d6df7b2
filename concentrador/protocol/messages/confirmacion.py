"""confirmacionRecepcionFichero: I have the file (CPCSCC.md §4.4)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from typing import ClassVar, Self

from lxml import etree

from concentrador.protocol.messages.common import (
    CodigoResponse,
    MessageError,
    MessageSource,
    WireMessage,
    cp_element,
    cp_subelement,
    find_first,
    parse_int,
    scope_of,
    text_of,
    token_of,
)

__all__ = [
    "ConfirmacionRecepcionFichero",
    "ConfirmacionRecepcionFicheroResponse",
    "ConfirmationCode",
    "ConfirmationResult",
]


class ConfirmationCode(IntEnum):
    """``codConfirmacion``: what the collector says about the file."""

    RECEIVED = 0
    CHECKSUM_FAILED = 1
    GENERIC_ERROR = 2


class ConfirmationResult(IntEnum):
    """``codigo`` of the answer; a client treats any non-zero as not confirmed."""

    ACCEPTED = 0
    ERROR = 1


@dataclass(frozen=True, slots=True)
class ConfirmacionRecepcionFichero(WireMessage):
    """The request. ``cod_confirmacion`` is kept as sent, even outside 0-2,
    so that the server decides (and logs) what to do with an odd code."""

    ELEMENT: ClassVar[str] = "confirmacionRecepcionFichero"

    nombre_fichero: str
    cod_confirmacion: int

    def to_xml(self) -> etree._Element:
        root = cp_element(self.ELEMENT)
        cp_subelement(root, "nombreFichero", self.nombre_fichero)
        cp_subelement(root, "codConfirmacion", str(int(self.cod_confirmacion)))
        return root

    @classmethod
    def from_xml(cls, source: MessageSource) -> Self:
        scope = scope_of(source)
        nombre = find_first(scope, "nombreFichero")
        codigo = find_first(scope, "codConfirmacion")
        if nombre is None or not token_of(nombre):
            raise MessageError("confirmacionRecepcionFichero has no nombreFichero")
        if codigo is None:
            raise MessageError("confirmacionRecepcionFichero has no codConfirmacion")
        return cls(text_of(nombre), parse_int(text_of(codigo), "codConfirmacion"))


@dataclass(frozen=True, slots=True)
class ConfirmacionRecepcionFicheroResponse(CodigoResponse):
    """The answer: 0 accepted, 1 generic error (anything non-zero: not confirmed)."""

    ELEMENT: ClassVar[str] = "confirmacionRecepcionFicheroResponse"

    @property
    def confirmed(self) -> bool:
        return self.codigo == ConfirmationResult.ACCEPTED

"""recogerFichero: fetch one published file or block (CPCSCC.md §4.3).

The response envelope is record 1 of a DIME message whose record 2 is the
bzip2 bytes; framing is the DIME module's job, this is only the envelope.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Self

from lxml import etree

from concentrador.protocol.messages.common import (
    MessageError,
    MessageSource,
    WireMessage,
    cp_element,
    cp_subelement,
    find_first,
    scope_of,
    text_of,
    token_of,
)
from concentrador.protocol.messages.fichero import Fichero, read_fichero

__all__ = ["RecogerFichero", "RecogerFicheroResponse"]


@dataclass(frozen=True, slots=True)
class RecogerFichero(WireMessage):
    """The request: the name of the file or block wanted."""

    ELEMENT: ClassVar[str] = "recogerFichero"

    nombre_fichero: str

    def to_xml(self) -> etree._Element:
        root = cp_element(self.ELEMENT)
        cp_subelement(root, "nombreFichero", self.nombre_fichero)
        return root

    @classmethod
    def from_xml(cls, source: MessageSource) -> Self:
        field = find_first(scope_of(source), "nombreFichero")
        if field is None:
            raise MessageError("recogerFichero has no nombreFichero")
        nombre = text_of(field)
        if not token_of(field):
            raise MessageError("recogerFichero has an empty nombreFichero")
        return cls(nombre)


@dataclass(frozen=True, slots=True)
class RecogerFicheroResponse(WireMessage):
    """The answer: the file's name and MD5; ``fichero is None`` means not found.

    A server never writes ``None`` (it answers the ``Client.Fichero`` fault);
    it only appears when reading an old peer's empty ``Fichero``.
    """

    ELEMENT: ClassVar[str] = "recogerFicheroResponse"

    fichero: Fichero | None

    def to_xml(self) -> etree._Element:
        root = cp_element(self.ELEMENT)
        if self.fichero is None:
            # The old "not found" shape, kept so that the model round-trips.
            fichero = cp_subelement(root, "Fichero")
            cp_subelement(fichero, "Nombre", "")
            cp_subelement(fichero, "Checksum", "")
        else:
            self.fichero.to_xml(root)
        return root

    @classmethod
    def from_xml(cls, source: MessageSource) -> Self:
        return cls(read_fichero(source))

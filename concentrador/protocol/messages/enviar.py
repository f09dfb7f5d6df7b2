"""enviarFichero: push a file or block to the peer (CPCSCC.md §4.5).

The request envelope is record 1 of a DIME message whose record 2 is the
bzip2 bytes; framing is the DIME module's job, this is only the envelope.
"""

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
)
from concentrador.protocol.messages.fichero import Fichero, read_fichero

__all__ = ["EnviarFichero", "EnviarFicheroResponse", "PushResult"]


class PushResult(IntEnum):
    """``codigo`` of the enviarFichero answer (§4.5 table)."""

    STORED = 0
    CHECKSUM_MISMATCH = 1
    GENERIC_ERROR = 2
    PARTICIPANT_NOT_ALLOWED = 3
    TYPE_NOT_ALLOWED = 4
    TOO_LARGE = 5
    OUTSIDE_LOAD_WINDOW = 6

    @property
    def delivered(self) -> bool:
        """The receiver has the file (6 is stored, only not auto-loaded)."""
        return self in (PushResult.STORED, PushResult.OUTSIDE_LOAD_WINDOW)

    @property
    def retryable(self) -> bool:
        """The sender retries later (up to its limit) before escalating."""
        return self in (PushResult.CHECKSUM_MISMATCH, PushResult.GENERIC_ERROR)


@dataclass(frozen=True, slots=True)
class EnviarFichero(WireMessage):
    """The request: the pushed file's name and MD5 (the bytes are attached)."""

    ELEMENT: ClassVar[str] = "enviarFichero"

    fichero: Fichero

    def to_xml(self) -> etree._Element:
        root = cp_element(self.ELEMENT)
        self.fichero.to_xml(root)
        return root

    @classmethod
    def from_xml(cls, source: MessageSource) -> Self:
        fichero = read_fichero(source)
        if fichero is None:
            raise MessageError("enviarFichero has no Fichero with a Nombre and a Checksum")
        return cls(fichero)


@dataclass(frozen=True, slots=True)
class EnviarFicheroResponse(CodigoResponse):
    """The answer: the receiver's ``codigo``, kept as sent (see :class:`PushResult`)."""

    ELEMENT: ClassVar[str] = "enviarFicheroResponse"

    def result(self) -> PushResult | None:
        """The known meaning of ``codigo``, or ``None`` for a code §4.5 lacks."""
        try:
            return PushResult(self.codigo)
        except ValueError:
            return None

"""The ``Fichero`` structure: a file name and the MD5 of its attached bytes.

It travels in the recogerFichero response and the enviarFichero request
(CPCSCC.md §4.3, §4.5); the bytes themselves are the DIME attachment, which
the envelope does not reference.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass

from lxml import etree

from concentrador.protocol.messages.common import (
    MessageSource,
    cp_subelement,
    find_first,
    scope_of,
    text_of,
    token_of,
)
from concentrador.protocol.xmlparse import xml_trim

__all__ = ["Fichero", "read_fichero"]


@dataclass(frozen=True, slots=True)
class Fichero:
    """A file name and its MD5 as hex (always kept in lower case).

    The checksum is not validated as hex here: a garbage checksum simply
    never matches, which the receiver answers with code 1 (§4.5 order).
    """

    nombre: str
    checksum: str

    def __post_init__(self) -> None:
        # §4.3: write lower case, accept upper case when reading.
        object.__setattr__(self, "checksum", xml_trim(self.checksum).lower())

    def matches(self, md5_hex: str) -> bool:
        """Whether ``md5_hex`` (any case) is this file's checksum."""
        return hmac.compare_digest(self.checksum.encode(), xml_trim(md5_hex).lower().encode())

    def to_xml(self, parent: etree._Element) -> etree._Element:
        element = cp_subelement(parent, "Fichero")
        cp_subelement(element, "Nombre", self.nombre)
        cp_subelement(element, "Checksum", self.checksum)
        return element


def read_fichero(source: MessageSource) -> Fichero | None:
    """Read the first ``Fichero`` in ``source``; ``None`` means "not found".

    Older peers answered a missing file with a ``Fichero`` whose fields are
    empty (§4.3), so an absent ``Fichero``, or one with an empty or missing
    ``Nombre`` or ``Checksum``, is read as ``None``.
    """
    scope = scope_of(source)
    element = find_first(scope, "Fichero")
    # Bare parameters: Nombre/Checksum straight in the Body, no Fichero.
    fields = [element] if element is not None else scope
    nombre_element = find_first(fields, "Nombre")
    checksum_element = find_first(fields, "Checksum")
    if nombre_element is None or checksum_element is None:
        return None
    nombre = text_of(nombre_element)
    checksum = token_of(checksum_element)
    if not nombre or not checksum:
        return None
    return Fichero(nombre, checksum)

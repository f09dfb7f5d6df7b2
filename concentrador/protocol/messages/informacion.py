"""informacionDisponible: which files are published for me (CPCSCC.md §4.2)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import ClassVar, Self

from lxml import etree

from concentrador.protocol.filetypes import REAL_TYPE_IDS, TOD
from concentrador.protocol.messages.common import (
    MessageError,
    MessageSource,
    WireMessage,
    cp_element,
    cp_subelement,
    find_all,
    find_first,
    parse_int,
    scope_of,
    text_of,
)
from concentrador.protocol.xmlparse import attribute_by_local_name, xml_trim

__all__ = [
    "MAX_REQUESTED_TYPES",
    "DatosFichero",
    "InformacionDisponible",
    "InformacionDisponibleResponse",
    "TipoFichero",
    "TodMixError",
    "size_in_kb",
]

# There are 21 ids; a request naming more distinct ids than this is hostile
# (it would make the server build a huge answer of empty unknown types).
MAX_REQUESTED_TYPES = 64


class TodMixError(MessageError):
    """``TOD`` was requested together with other types (§4.2: Client.TOD)."""

    fault_code = "Client.TOD"


def size_in_kb(size_bytes: int) -> int:
    """The ``longitud`` of a file: KB of 1024 bytes, rounded up (§4.2 Decision).

    Rounding up means no non-empty file is ever listed as 0 KB.
    """
    if size_bytes < 0:
        raise MessageError(f"a file size cannot be negative: {size_bytes}")
    return -(-size_bytes // 1024)


def _type_id(element: etree._Element) -> str:
    # The reference shape carries the id as an attribute; some stacks write
    # it as a child element or as text, which we also accept.
    value = attribute_by_local_name(element, "id")
    if value is None:
        child = find_first([*element], "id")
        value = text_of(child) if child is not None else text_of(element)
    value = xml_trim(value)
    if not value:
        raise MessageError("TipoFichero has no id")
    return value


@dataclass(frozen=True, slots=True)
class InformacionDisponible(WireMessage):
    """The request: the type ids the client asks about, as sent."""

    ELEMENT: ClassVar[str] = "informacionDisponible"

    tipos: tuple[str, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "tipos", tuple(self.tipos))

    def validate(self) -> None:
        """Raise :class:`TodMixError` when ``TOD`` is not alone.

        An empty list is valid (it is answered with an empty list) and so are
        unknown ids (each is answered as an empty type, §4.2 Decision).
        """
        distinct = set(self.tipos)
        if TOD in distinct and len(distinct) > 1:
            others = ", ".join(sorted(distinct - {TOD}))
            raise TodMixError(f"type TOD must be requested alone, not together with {others}")
        if len(distinct) > MAX_REQUESTED_TYPES:
            raise MessageError(
                f"informacionDisponible asks for {len(distinct)} types; "
                f"at most {MAX_REQUESTED_TYPES} are accepted"
            )

    def requested_types(self) -> tuple[str, ...]:
        """The ids the answer must list, in order, each once.

        ``TOD`` expands to the 20 real ids in §7 order; otherwise the request's
        ids are kept in their order with duplicates dropped. Validates first.
        """
        self.validate()
        if TOD in self.tipos:
            return REAL_TYPE_IDS
        return tuple(dict.fromkeys(self.tipos))

    def to_xml(self) -> etree._Element:
        root = cp_element(self.ELEMENT)
        lista = cp_subelement(root, "listaTipos")
        for tipo in self.tipos:
            cp_subelement(lista, "TipoFichero", id=tipo)
        return root

    @classmethod
    def from_xml(cls, source: MessageSource) -> Self:
        return cls(
            tuple(_type_id(element) for element in find_all(scope_of(source), "TipoFichero"))
        )


@dataclass(frozen=True, slots=True)
class DatosFichero:
    """One listed file: its name and its size in KB (rounded up)."""

    nombre: str
    longitud_kb: int

    @classmethod
    def for_size(cls, nombre: str, size_bytes: int) -> DatosFichero:
        """The listing entry for a file of ``size_bytes`` compressed bytes."""
        return cls(nombre, size_in_kb(size_bytes))

    def to_xml(self, parent: etree._Element) -> etree._Element:
        return cp_subelement(
            parent, "DatosFichero", nombre=self.nombre, longitud=str(self.longitud_kb)
        )

    @classmethod
    def from_xml(cls, element: etree._Element) -> DatosFichero:
        nombre = attribute_by_local_name(element, "nombre")
        if nombre is None:
            child = find_first([*element], "nombre")
            nombre = text_of(child) if child is not None else ""
        if not nombre:
            raise MessageError("DatosFichero has no nombre")
        longitud = attribute_by_local_name(element, "longitud")
        if longitud is None:
            child = find_first([*element], "longitud")
            if child is None:
                raise MessageError(f"DatosFichero {nombre!r} has no longitud")
            longitud = text_of(child)
        size = parse_int(longitud, "DatosFichero longitud")
        if size < 0:
            raise MessageError(f"DatosFichero {nombre!r} has a negative longitud: {size}")
        return cls(nombre, size)


@dataclass(frozen=True, slots=True)
class TipoFichero:
    """One type of the answer with its files (empty when there are none)."""

    id: str
    ficheros: tuple[DatosFichero, ...] = field(default=())

    def __post_init__(self) -> None:
        object.__setattr__(self, "ficheros", tuple(self.ficheros))

    def to_xml(self, parent: etree._Element) -> etree._Element:
        element = cp_subelement(parent, "TipoFichero", id=self.id)
        for fichero in self.ficheros:
            fichero.to_xml(element)
        return element

    @classmethod
    def from_xml(cls, element: etree._Element) -> TipoFichero:
        datos = find_all([*element], "DatosFichero")
        return cls(_type_id(element), tuple(DatosFichero.from_xml(d) for d in datos))


@dataclass(frozen=True, slots=True)
class InformacionDisponibleResponse(WireMessage):
    """The answer: one :class:`TipoFichero` per requested (or expanded) id."""

    ELEMENT: ClassVar[str] = "informacionDisponibleResponse"

    tipos: tuple[TipoFichero, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "tipos", tuple(self.tipos))

    def files(self) -> Iterable[tuple[str, DatosFichero]]:
        """Every listed file with its type id, in listing order."""
        for tipo in self.tipos:
            for fichero in tipo.ficheros:
                yield tipo.id, fichero

    def to_xml(self) -> etree._Element:
        root = cp_element(self.ELEMENT)
        lista = cp_subelement(root, "listaTipos")
        for tipo in self.tipos:
            tipo.to_xml(lista)
        return root

    @classmethod
    def from_xml(cls, source: MessageSource) -> Self:
        return cls(
            tuple(TipoFichero.from_xml(e) for e in find_all(scope_of(source), "TipoFichero"))
        )

"""What every CPCSCC message shares: the namespace, errors, read/write helpers.

Writing is strict: every element is emitted in the ``cp`` namespace with the
exact reconstructed shape of CPCSCC.md §4. Reading is liberal (the §4
parsing rule): fields are found by local name, case-insensitively, with or
without a namespace, with or without the operation wrapper element, and
unknown elements, ``xsi:type`` attributes and surrounding whitespace are
ignored.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import ClassVar, Self

from lxml import etree

from concentrador.protocol.errors import ProtocolError
from concentrador.protocol.xmlparse import local_name, text_content, xml_trim

__all__ = [
    "CP_NAMESPACE",
    "CP_PREFIX",
    "MessageError",
    "MessageSource",
    "WireMessage",
    "cp_element",
    "cp_subelement",
    "find_all",
    "find_first",
    "parse_int",
    "scope_of",
    "text_of",
    "token_of",
]

CP_NAMESPACE = "http://simel.ree.es/cpcscc/2003/Mensajes"
CP_PREFIX = "cp"

# What ``from_xml`` accepts: the wrapper element, the SOAP Body, one bare
# parameter element, or the list of Body children (bare parameters, §1).
MessageSource = etree._Element | Sequence[etree._Element]

# Integers in CPCSCC are small codes and sizes in KB. Bounding the digits
# keeps hostile input away from Python's big-int parsing limits.
_INT_RE = re.compile(r"[+-]?[0-9]{1,12}")


class MessageError(ProtocolError):
    """A message is missing a field or a field has an unusable value."""

    # A fault answering this error is about the Body, so it carries detail (§3).
    fault_from_body: ClassVar[bool] = True


def cp_element(name: str, **attributes: str) -> etree._Element:
    """A new ``cp:name`` element with the ``cp`` prefix declared on it."""
    element = etree.Element(f"{{{CP_NAMESPACE}}}{name}", nsmap={CP_PREFIX: CP_NAMESPACE})
    for key, value in attributes.items():
        _set_attribute(element, key, value)
    return element


def cp_subelement(
    parent: etree._Element, name: str, text: str | None = None, **attributes: str
) -> etree._Element:
    """Append a ``cp:name`` child (optionally with text) to ``parent``."""
    element = etree.SubElement(parent, f"{{{CP_NAMESPACE}}}{name}")
    for key, value in attributes.items():
        _set_attribute(element, key, value)
    if text is not None:
        try:
            element.text = text
        except ValueError:
            # lxml refuses control characters and NULs, which XML cannot carry.
            raise MessageError(f"value for {name} cannot be written in XML: {text!r}") from None
    return element


def _set_attribute(element: etree._Element, key: str, value: str) -> None:
    try:
        element.set(key, value)
    except ValueError:
        raise MessageError(f"attribute {key} cannot be written in XML: {value!r}") from None


def scope_of(source: MessageSource) -> list[etree._Element]:
    """Normalise a ``from_xml`` argument to a list of elements to search."""
    if isinstance(source, etree._Element):
        return [source]
    elements = list(source)
    for element in elements:
        if not isinstance(element, etree._Element):
            raise MessageError(f"expected XML elements, got {type(element).__name__}")
    return elements


def _walk(scope: Sequence[etree._Element]) -> Iterator[etree._Element]:
    for top in scope:
        # iter() walks self and descendants in document order without
        # recursion, so a deeply nested hostile document cannot blow the stack.
        yield from top.iter(etree.Element)


def find_first(scope: Sequence[etree._Element], name: str) -> etree._Element | None:
    """The first element (document order) whose local name is ``name``."""
    wanted = name.lower()
    for top in scope:
        # iter(etree.Element) yields elements only, so every tag is a str;
        # local_name is inlined: this loop runs per element of every message read.
        for element in top.iter(etree.Element):
            tag = element.tag
            if tag[:1] == "{":
                tag = tag.partition("}")[2]
            if tag.lower() == wanted:
                return element
    return None


def find_all(scope: Sequence[etree._Element], name: str) -> list[etree._Element]:
    """Every element (document order) whose local name is ``name``."""
    wanted = name.lower()
    return [element for element in _walk(scope) if local_name(element).lower() == wanted]


def text_of(element: etree._Element) -> str:
    """The element's text content exactly as sent (``""`` when empty).

    For xs:string values such as file names: nothing is trimmed, so a name
    with a trailing space (or U+00A0) is a different name and is refused by
    the name rules, never silently aliased to another file.
    """
    return text_content(element)


def token_of(element: etree._Element) -> str:
    """The element's text without leading/trailing XML white space only
    (:func:`~concentrador.protocol.xmlparse.xml_trim`), for collapsed types."""
    return xml_trim(text_of(element))


def parse_int(text: str, field: str) -> int:
    """Parse a wire integer by the xs:integer lexical rule, naming the field.

    Only XML white space is trimmed (the type collapses it); the rest must be
    an optional sign and ASCII digits: ``int()`` alone would also take
    U+00A0-padded, ``1_000`` and non-ASCII digit strings.
    """
    stripped = xml_trim(text)
    if not _INT_RE.fullmatch(stripped):
        shown = stripped if len(stripped) <= 40 else stripped[:40] + "..."
        raise MessageError(f"{field} must be an integer, got {shown!r}")
    return int(stripped)


class WireMessage(ABC):
    """A request or response of one CPCSCC operation.

    ``ELEMENT`` is the local name of the operation wrapper element that
    :meth:`to_xml` emits (always in the ``cp`` namespace).
    """

    ELEMENT: ClassVar[str]

    @abstractmethod
    def to_xml(self) -> etree._Element:
        """The message's Body element, in exactly the reference shape."""

    @classmethod
    @abstractmethod
    def from_xml(cls, source: MessageSource) -> Self:
        """Read the message liberally from its wrapper, Body or bare parameters."""


@dataclass(frozen=True, slots=True)
class CodigoResponse(WireMessage):
    """A response whose only field is ``codigo`` (confirmation and push answers)."""

    codigo: int

    def to_xml(self) -> etree._Element:
        root = cp_element(self.ELEMENT)
        cp_subelement(root, "codigo", str(int(self.codigo)))
        return root

    @classmethod
    def from_xml(cls, source: MessageSource) -> Self:
        field = find_first(scope_of(source), "codigo")
        if field is None:
            raise MessageError(f"{cls.ELEMENT} has no codigo")
        return cls(parse_int(text_of(field), "codigo"))

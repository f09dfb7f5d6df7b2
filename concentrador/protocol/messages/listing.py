"""The informacionDisponible answer written as text: the fast path (CPCSCC.md §4.2).

The listing must stay fast with 10,000 published files (the issue's budget is
150 ms on the serving path). Measured on the dev box for 10,000 rows:

* ``InformacionDisponibleResponse(...).to_xml()`` plus ``build_envelope``:
  ~80 ms (one lxml element and attribute call per file, then a deep copy).
  Writing the ``DatosFichero`` lines as text: ~15 ms.

So the answer is written here as text, inside an envelope that
``build_envelope`` still produces (a comment marks where the list goes). The
shape is exactly the model's (a test parses both and compares them), and the
request side, ``TOD`` rules and KB rounding still come from the models.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import NamedTuple

from lxml import etree

from concentrador.protocol.messages.common import CP_NAMESPACE, cp_element
from concentrador.protocol.messages.informacion import InformacionDisponible, size_in_kb
from concentrador.protocol.soapenv import SoapVersion, build_envelope

__all__ = ["ListedFile", "listable_name", "listing_envelope"]

_MARKER = "cpcscc-listing"
_MARKER_BYTES = f"<!--{_MARKER}-->".encode()

# Characters XML 1.0 can carry. A file name outside this set cannot be listed
# at all (lxml would refuse it too).
_XML_CHARS = re.compile("^[\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]*$")
_PLAIN = re.compile(r"[A-Za-z0-9_.+-]*")
_ATTRIBUTE_ESCAPES = str.maketrans(
    {
        "&": "&amp;",
        "<": "&lt;",
        ">": "&gt;",
        '"': "&quot;",
        "\t": "&#9;",
        "\n": "&#10;",
        "\r": "&#13;",
    }
)


class ListedFile(NamedTuple):
    """One published name (a whole file or a block) with its type and size.

    A tuple rather than a dataclass: 10,000 of them are built per listing.
    """

    name: str
    file_type: str
    size: int


def listable_name(name: str) -> bool:
    """Whether XML can carry ``name``; :func:`listing_envelope` skips the others."""
    return _PLAIN.fullmatch(name) is not None or _XML_CHARS.match(name) is not None


def _attribute(value: str) -> str | None:
    """``value`` escaped for a double-quoted attribute; None if XML cannot carry it."""
    if _PLAIN.fullmatch(value):  # the usual P.O. 10.11 name: nothing to do
        return value
    if _XML_CHARS.match(value) is None:
        return None
    return value.translate(_ATTRIBUTE_ESCAPES)


def listing_envelope(
    request: InformacionDisponible,
    files: Iterable[tuple[str, str, int]],
    version: SoapVersion,
) -> bytes:
    """The whole SOAP response to ``request`` listing ``files`` (name, type, size).

    Raises :class:`~concentrador.protocol.messages.TodMixError` (``Client.TOD``)
    when ``TOD`` is not alone. Unknown ids are answered as empty types; ``TOD``
    lists the 20 real types in §7 order, empty ones included. A name XML cannot
    carry (see :func:`listable_name`) is left out.
    """
    wanted = request.requested_types()  # validates: TOD alone, bounded count
    by_type: dict[str, list[str]] = {type_id: [] for type_id in wanted}
    for name, file_type, size in files:
        lines = by_type.get(file_type)
        if lines is None:
            continue
        escaped = _attribute(name)
        if escaped is not None:
            lines.append(f'<cp:DatosFichero nombre="{escaped}" longitud="{size_in_kb(size)}"/>')
    parts: list[str] = []
    for type_id in wanted:
        lines = by_type[type_id]
        # Request ids came out of a parsed XML document, so XML can carry them.
        opening = f'<cp:TipoFichero id="{_attribute(type_id)}"'
        if lines:
            parts.append(f"{opening}>{''.join(lines)}</cp:TipoFichero>")
        else:
            parts.append(f"{opening}/>")
    return _wrap("".join(parts).encode("utf-8"), version)


def _wrap(listing: bytes, version: SoapVersion) -> bytes:
    root = cp_element("informacionDisponibleResponse")
    lista = etree.SubElement(root, f"{{{CP_NAMESPACE}}}listaTipos")
    lista.append(etree.Comment(_MARKER))
    envelope = build_envelope(root, version=version)
    head, marker, tail = envelope.partition(_MARKER_BYTES)
    if not marker:  # an assert would vanish under -O
        raise RuntimeError("build_envelope dropped the listing marker")
    return head + listing + tail

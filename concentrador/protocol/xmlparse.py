"""Hardened XML parsing for bytes that come from peers.

Every SOAP envelope a peer sends goes through :func:`parse_xml`. Peers are
treated as hostile, so the parser:

- checks the size limit *before* handing anything to libxml2;
- refuses any document type declaration (``<!DOCTYPE``), and with it every
  entity declaration, internal or external. Nothing in CPCSCC needs a DTD,
  so refusing is simpler and safer than trying to expand entities safely:
  billion-laughs and XXE (``file://``, ``http://``) inputs are rejected
  before libxml2 sees them, and a second check after parsing catches the
  exotic encodings the byte scan cannot read;
- never loads a DTD, never resolves entities, never touches the network,
  and keeps libxml2's ``huge_tree`` safety limits (depth, text size) on.

It also holds the small local-name helpers the SOAP and message layers use
to read liberally (namespace-agnostic, case-insensitive element names).
"""

from __future__ import annotations

import re

from lxml import etree

from concentrador.protocol.errors import ProtocolError

__all__ = [
    "XmlEncodingError",
    "XmlError",
    "XmlSecurityError",
    "XmlSyntaxError",
    "XmlTooLargeError",
    "attribute_by_local_name",
    "child_elements",
    "local_name",
    "namespace_of",
    "parse_xml",
    "text_content",
    "xml_trim",
]

# Encodings are sniffed the way libxml2 does it (BOM, then the first bytes),
# and only these families are accepted. Within each, a DOCTYPE must start
# with the upper-case keyword encoded exactly as below, so a byte scan finds
# every one before libxml2 sees it. Exotic encodings (UTF-7, EBCDIC,
# ISO-2022...) could hide the keyword from the scan, so they are refused.
_BOMS: tuple[tuple[bytes, str], ...] = (
    (b"\x00\x00\xfe\xff", "utf-32-be"),
    (b"\xff\xfe\x00\x00", "utf-32-le"),
    (b"\xef\xbb\xbf", "utf-8"),
    (b"\xfe\xff", "utf-16-be"),
    (b"\xff\xfe", "utf-16-le"),
)
_NO_BOM_STARTS: tuple[tuple[bytes, str], ...] = (
    (b"\x00\x00\x00<", "utf-32-be"),
    (b"<\x00\x00\x00", "utf-32-le"),
    (b"\x00<\x00?", "utf-16-be"),
    (b"<\x00?\x00", "utf-16-le"),
)
_STARTS = (*_BOMS, *_NO_BOM_STARTS)
_ALLOWED_DECLARED: dict[str, frozenset[str]] = {
    "utf-8": frozenset(
        {"utf8", "usascii", "ascii", "iso88591", "latin1", "iso885915", "windows1252", "cp1252"}
    ),
    "utf-16-le": frozenset({"utf16", "utf16le"}),
    "utf-16-be": frozenset({"utf16", "utf16be"}),
    "utf-32-le": frozenset({"utf32", "utf32le"}),
    "utf-32-be": frozenset({"utf32", "utf32be"}),
}
_DECLARATION_START_RE = re.compile(r"\A\ufeff?<\?xml[ \t\r\n]")
_DECLARATION_RE = re.compile(r"\A\ufeff?<\?xml[ \t\r\n]([^>]{0,300})\?>")
_ENCODING_PSEUDO_ATTRIBUTE_RE = re.compile(r"\bencoding\s*=\s*[\"']([^\"']{0,40})[\"']")
_DANGEROUS_PATTERNS: tuple[bytes, ...] = tuple(
    keyword.encode(codec)
    for keyword in ("<!DOCTYPE", "<!ENTITY")
    for codec in ("utf-8", "utf-16-le", "utf-16-be", "utf-32-le", "utf-32-be")
)

_LEADING_WHITESPACE = b" \t\r\n"
# Declarations that name an accepted encoding of the family their bytes are
# in (UTF-8, no BOM): _check_declared_encoding would accept them, so the
# usual envelope skips its decoding and regexes.
_USUAL_DECLARATIONS: tuple[bytes, ...] = (
    b"<?xml version='1.0' encoding='UTF-8'?>",
    b'<?xml version="1.0" encoding="UTF-8"?>',
    b'<?xml version="1.0" encoding="utf-8"?>',
)


class XmlError(ProtocolError):
    """The bytes are not an acceptable XML document."""


class XmlTooLargeError(XmlError):
    """The document is over the size limit; it was not parsed."""


class XmlSecurityError(XmlError):
    """The document uses a DTD or entity declarations, which are refused."""


class XmlSyntaxError(XmlError):
    """The document is not well-formed XML."""


class XmlEncodingError(XmlError):
    """The document uses a character encoding that is not accepted."""


def _new_parser() -> etree.XMLParser:
    # A fresh parser per call: lxml parsers must not be shared across threads,
    # and building one is cheap next to parsing an envelope.
    return etree.XMLParser(
        resolve_entities=False,
        load_dtd=False,
        dtd_validation=False,
        attribute_defaults=False,
        no_network=True,
        huge_tree=False,
        collect_ids=False,
        recover=False,
        remove_blank_text=False,
    )


def parse_xml(data: bytes, *, max_size: int) -> etree._Element:
    """Parse ``data`` as one XML document and return its root element.

    Raises :class:`XmlTooLargeError` when ``data`` is longer than
    ``max_size`` bytes, :class:`XmlSecurityError` for any DTD or entity
    declaration, and :class:`XmlSyntaxError` for anything not well-formed.
    """
    if not isinstance(data, bytes | bytearray | memoryview):
        raise XmlSyntaxError(f"XML input must be bytes, not {type(data).__name__}")
    if len(data) > max_size:
        raise XmlTooLargeError(
            f"XML document of {len(data)} bytes is over the {max_size}-byte limit"
        )
    # Some stacks put a newline before the XML declaration, which XML forbids.
    # Stripping ASCII whitespace cannot eat a BOM; the encoding is sniffed
    # afterwards, on exactly the bytes libxml2 will see.
    raw = bytes(data).lstrip(_LEADING_WHITESPACE)
    if not raw:
        raise XmlSyntaxError("XML document is empty")
    if not raw.startswith(_USUAL_DECLARATIONS):  # ours and most stacks': UTF-8, said so
        _check_declared_encoding(raw, _sniff_encoding(raw))
    # Every family's spelling is scanned, not only the sniffed one: a false
    # positive costs a refusal, a miss would hand a DTD to libxml2. Each
    # pattern holds a "!" byte in every encoding, so a document without one
    # (a usual envelope) needs only that one scan.
    if b"!" in raw:
        for pattern in _DANGEROUS_PATTERNS:
            if pattern in raw:
                raise XmlSecurityError(
                    "XML document declares a DTD or entities; refused (DOCTYPE is never allowed)"
                )
    try:
        root = etree.fromstring(raw, _new_parser())
    except etree.XMLSyntaxError as exc:
        raise XmlSyntaxError(f"malformed XML: {_one_line(str(exc))}") from None
    except (ValueError, LookupError) as exc:
        # e.g. an encoding declaration lxml does not know.
        raise XmlSyntaxError(f"unreadable XML: {_one_line(str(exc))}") from None
    if root is None:
        raise XmlSyntaxError("XML document has no root element")
    _refuse_dtd(root)
    return root


def _sniff_encoding(raw: bytes) -> str:
    """The encoding family of ``raw``: ``utf-8`` stands for ASCII-compatible."""
    for start, family in _STARTS:
        if raw.startswith(start):
            return family
    if raw.startswith(b"\x4c\x6f\xa7\x94"):
        raise XmlEncodingError("EBCDIC XML is not accepted; send UTF-8")
    return "utf-8"


def _check_declared_encoding(raw: bytes, family: str) -> None:
    # The declaration is ASCII, so decoding a short prefix in the sniffed
    # family is enough to read it (errors ignored: a cut code unit at the end).
    prefix = raw[:1024].decode(family, errors="ignore")
    if not _DECLARATION_START_RE.match(prefix):
        return
    declaration = _DECLARATION_RE.match(prefix)
    if declaration is None:
        # An overlong declaration could push its encoding past what we read.
        raise XmlSyntaxError("XML declaration is malformed or too long")
    encoding = _ENCODING_PSEUDO_ATTRIBUTE_RE.search(declaration.group(1))
    if encoding is None:
        return
    declared = encoding.group(1)
    normalised = re.sub(r"[^a-z0-9]", "", declared.lower())
    if normalised not in _ALLOWED_DECLARED[family]:
        raise XmlEncodingError(f"XML encoding {declared!r} is not accepted here; send UTF-8")


def _refuse_dtd(root: etree._Element) -> None:
    """Second line of defence: refuse a DTD that slipped past the byte scan.

    Entities were not resolved (``resolve_entities=False``), so at this point
    nothing has been expanded or fetched; we only make sure the caller never
    sees such a document.
    """
    docinfo = root.getroottree().docinfo
    doctype: str = docinfo.doctype  # type: ignore[attr-defined]  # missing in lxml-stubs
    if doctype or docinfo.internalDTD is not None or docinfo.externalDTD is not None:
        raise XmlSecurityError("XML document declares a DTD; refused (DOCTYPE is never allowed)")
    for _ in root.iter(etree.Entity):
        raise XmlSecurityError("XML document uses entity references; refused")


def _one_line(message: str) -> str:
    first = message.strip().splitlines()[0] if message.strip() else "unknown error"
    return first[:200]


XML_WHITESPACE = " \t\r\n"
"""The only characters XML calls white space (XML 1.0 §2.3 ``S``). Python's
``str.strip()`` also removes U+00A0, U+3000 and friends, which a peer could
use to make two different names or codes look alike."""


def xml_trim(text: str) -> str:
    """``text`` without leading and trailing XML white space (and nothing else).

    For values whose schema type collapses white space (xs:int, xs:dateTime,
    tokens); an xs:string such as a file name is used exactly as sent.
    """
    return text.strip(XML_WHITESPACE)


def local_name(element: etree._Element) -> str:
    """The tag of ``element`` without its namespace (``""`` for comments/PIs)."""
    tag = element.tag
    if not isinstance(tag, str):
        return ""
    # What etree.QName(tag).localname gives for an element's (always valid)
    # Clark-notation tag, without building a QName: this runs per element read.
    return tag.partition("}")[2] if tag[:1] == "{" else tag


def namespace_of(element: etree._Element) -> str | None:
    """The namespace URI of ``element``'s tag, or ``None`` when it has none."""
    tag = element.tag
    if not isinstance(tag, str) or tag[:1] != "{":
        return None
    return tag[1 : tag.index("}")] or None  # etree.QName(tag).namespace, cheaper


def child_elements(element: etree._Element) -> list[etree._Element]:
    """The element children of ``element``, skipping comments and PIs."""
    return [child for child in element if isinstance(child.tag, str)]


def text_content(element: etree._Element) -> str:
    """All the text inside ``element``, joined exactly as sent (nothing trimmed)."""
    if not len(element):  # no children (the usual field): its text is all of it
        text = element.text
        return text if isinstance(text, str) else ""
    # Parsed documents only give str; the stubs also allow bytes.
    return "".join(piece for piece in element.itertext() if isinstance(piece, str))


def attribute_by_local_name(element: etree._Element, name: str) -> str | None:
    """The value of the attribute whose local name is ``name`` (any namespace).

    Exact match wins over a case-insensitive one, so ``id`` beats ``ID``.
    """
    value = element.get(name)
    if value is not None:
        return value
    wanted = name.lower()
    for key, candidate in element.attrib.items():
        if not isinstance(key, str) or not isinstance(candidate, str):
            continue  # only str in a parsed document; the stubs also allow bytes
        key_local = etree.QName(key).localname if key.startswith("{") else key
        if key_local.lower() == wanted:
            return candidate
    return None

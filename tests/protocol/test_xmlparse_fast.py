"""The shortcuts parse_xml takes for the usual envelope keep every refusal.

* The DTD/entity byte scan is skipped when the document has no ``!`` byte:
  every refused keyword holds one in every accepted encoding.
* The declared-encoding check is skipped for the usual UTF-8 declarations,
  which it would accept: anything else still goes through it.
"""

from __future__ import annotations

import pytest

from concentrador.protocol.xmlparse import (
    _DANGEROUS_PATTERNS,
    _USUAL_DECLARATIONS,
    XmlEncodingError,
    XmlSecurityError,
    _check_declared_encoding,
    local_name,
    namespace_of,
    parse_xml,
)

LIMIT = 1 << 20


def test_every_refused_keyword_holds_an_exclamation_mark_byte() -> None:
    assert _DANGEROUS_PATTERNS
    assert all(b"!" in pattern for pattern in _DANGEROUS_PATTERNS)


@pytest.mark.parametrize("declaration", _USUAL_DECLARATIONS)
def test_the_usual_declarations_are_ones_the_full_check_accepts(declaration: bytes) -> None:
    _check_declared_encoding(declaration + b"<a/>", "utf-8")  # raises if not


@pytest.mark.parametrize("declaration", _USUAL_DECLARATIONS)
def test_a_dtd_after_a_usual_declaration_is_still_refused(declaration: bytes) -> None:
    with pytest.raises(XmlSecurityError):
        parse_xml(declaration + b'<!DOCTYPE a [<!ENTITY x "y">]><a>&x;</a>', max_size=LIMIT)


@pytest.mark.parametrize("codec", ["utf-16-le", "utf-16-be", "utf-32-le", "utf-32-be"])
def test_a_dtd_in_a_wide_encoding_is_still_refused(codec: str) -> None:
    document = '<?xml version="1.0"?><!DOCTYPE a SYSTEM "file:///etc/passwd"><a/>'
    with pytest.raises(XmlSecurityError):
        parse_xml(document.encode(codec), max_size=LIMIT)


def test_an_unusual_declaration_is_still_checked() -> None:
    with pytest.raises(XmlEncodingError):
        parse_xml(b"<?xml version='1.0' encoding='UTF-7'?><a/>", max_size=LIMIT)
    with pytest.raises(XmlEncodingError):
        parse_xml(b'<?xml version="1.0" encoding="ebcdic-cp-us"?><a/>', max_size=LIMIT)


def test_names_read_without_qname_match_lxml() -> None:
    root = parse_xml(
        b'<r xmlns:p="urn:a:b" xmlns="urn:d"><p:x/><y/><z xmlns=""/><!--c--></r>', max_size=LIMIT
    )
    names = [(local_name(e), namespace_of(e)) for e in root]
    assert names == [("x", "urn:a:b"), ("y", "urn:d"), ("z", None), ("", None)]

"""Distinguished names: one comparable form for every way a DN is spelled.

A peer is identified by the subject DN of its TLS client certificate
(CPCSCC.md §2). Operators copy DNs into the config from wherever they find
them: LDAP-style RFC 4514 strings (``CN=a,CN=b,OU=x,O=REE,C=es``, most
specific first), OpenSSL's one-line form (``/C=es/O=REE/OU=x/CN=b/CN=a``,
certificate order), Java tools... The server sees the peer certificate as a
``cryptography`` ``Name``, as DER, or as ``ssl.SSLSocket.getpeercert()``'s
tuple of RDN tuples. All of them normalise to :class:`DistinguishedName`,
whose equality is the matching rule:

- RDNs in certificate order (root first), so repeated CNs keep their order;
- attribute types by OID, so ``cn``, ``CN`` and ``commonName`` are alike;
- values compared case-insensitively (``str.casefold``) with surrounding
  whitespace stripped;
- a multi-valued RDN (``CN=a+UID=b``) is a set of attribute/value pairs.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from cryptography import x509

# (dotted OID, preferred short name, other accepted names). The long names
# are what OpenSSL (and so ``getpeercert()``) uses.
_ATTRIBUTE_TYPES: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("2.5.4.3", "CN", ("commonName",)),
    ("2.5.4.6", "C", ("countryName",)),
    ("2.5.4.10", "O", ("organizationName",)),
    ("2.5.4.11", "OU", ("organizationalUnitName",)),
    ("2.5.4.7", "L", ("localityName",)),
    ("2.5.4.8", "ST", ("S", "stateOrProvinceName")),
    ("2.5.4.9", "STREET", ("streetAddress",)),
    ("2.5.4.5", "serialNumber", ()),
    ("2.5.4.4", "SN", ("surname",)),
    ("2.5.4.42", "GN", ("givenName",)),
    ("2.5.4.43", "initials", ()),
    ("2.5.4.44", "generationQualifier", ()),
    ("2.5.4.12", "title", ("T",)),
    ("2.5.4.17", "postalCode", ()),
    ("2.5.4.46", "dnQualifier", ()),
    ("2.5.4.65", "pseudonym", ()),
    ("2.5.4.97", "organizationIdentifier", ()),
    ("0.9.2342.19200300.100.1.25", "DC", ("domainComponent",)),
    ("0.9.2342.19200300.100.1.1", "UID", ("userId",)),
    ("1.2.840.113549.1.9.1", "emailAddress", ("E", "email")),
)
_OID_BY_NAME: dict[str, str] = {}
_SHORT_NAME_BY_OID: dict[str, str] = {}
for _oid, _short, _others in _ATTRIBUTE_TYPES:
    _SHORT_NAME_BY_OID[_oid] = _short
    for _name in (_short, *_others):
        _OID_BY_NAME[_name.casefold()] = _oid

_NUMERIC_OID = re.compile(r"^(?:oid\.)?([0-2](?:\.(?:0|[1-9][0-9]*))+)$", re.IGNORECASE)
_HEX_PAIR = re.compile(r"[0-9A-Fa-f]{2}")
# In OpenSSL's form a '/' or '+' only separates when a "TYPE=" follows:
# ``-nameopt compat`` output does not escape them inside values.
_TYPE_AHEAD = re.compile(r"\s*(?:[A-Za-z][A-Za-z0-9-]*|(?:oid\.)?[0-9]+(?:\.[0-9]+)+)\s*=", re.I)
# A value needs these escaped in RFC 4514 output (leading '#'/space and
# trailing space are handled separately).
_RFC4514_SPECIALS = frozenset(',+"\\<>;=')

Attribute = tuple[str, str]
"""(dotted OID, value)."""


class DNError(ValueError):
    """A DN that cannot be parsed. ``str(err)`` is one line."""


@dataclass(frozen=True)
class DistinguishedName:
    """A DN in canonical, comparable form.

    ``rdns`` is the canonical key (certificate order; each RDN a sorted tuple
    of ``(oid, folded value)``); two DNs are equal exactly when their keys
    are. ``text`` keeps the original spelling as an RFC 4514 string, for
    messages and ``check-config`` output; it takes no part in comparison.
    """

    rdns: tuple[tuple[Attribute, ...], ...]
    text: str = field(default="", compare=False)

    def __str__(self) -> str:
        return self.text

    @property
    def starts_with_country(self) -> bool:
        """True when the most specific RDN is ``C=``: the sign of a DN written
        in certificate order where RFC 4514 order was meant."""
        return len(self.rdns) > 1 and self.rdns[-1][0][0] == "2.5.4.6"


def oid_for_attribute_name(name: str) -> str:
    """The dotted OID of an attribute type name (``CN``, ``commonName``,
    ``2.5.4.3``, ``OID.2.5.4.3``); raises :class:`DNError` if unknown."""
    key = name.strip()
    oid = _OID_BY_NAME.get(key.casefold())
    if oid is not None:
        return oid
    match = _NUMERIC_OID.match(key)
    if match:
        return match.group(1)
    raise DNError(f"unknown DN attribute type {name!r}")


def _fold(value: str) -> str:
    return value.strip().casefold()


def _escape_rfc4514(value: str) -> str:
    out = []
    for index, char in enumerate(value):
        if (
            char in _RFC4514_SPECIALS
            or (index == 0 and char in "# ")
            or (index == len(value) - 1 and char == " ")
        ):
            out.append("\\" + char)
        elif char == "\x00":
            out.append("\\00")
        else:
            out.append(char)
    return "".join(out)


def _make(rdns_in_cert_order: Iterable[Iterable[Attribute]]) -> DistinguishedName:
    """Build the canonical DN from RDNs in certificate order."""
    canonical: list[tuple[Attribute, ...]] = []
    rendered: list[str] = []
    for rdn in rdns_in_cert_order:
        attributes = [(oid, value.strip()) for oid, value in rdn]
        if not attributes:
            raise DNError("empty RDN")
        canonical.append(tuple(sorted((oid, _fold(value)) for oid, value in attributes)))
        rendered.append(
            "+".join(
                f"{_SHORT_NAME_BY_OID.get(oid, oid)}={_escape_rfc4514(value)}"
                for oid, value in attributes
            )
        )
    return DistinguishedName(tuple(canonical), ",".join(reversed(rendered)))


# --- string forms -----------------------------------------------------------


def _decode_utf8(raw: bytearray, text: str) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise DNError(f"DN {text!r}: escaped bytes are not valid UTF-8") from None


def _decode_ber_string(hex_text: str, text: str) -> str:
    """Decode an RFC 4514 ``#hex`` value: the BER encoding of a string."""
    try:
        der = bytes.fromhex(hex_text)
    except ValueError:
        raise DNError(f"DN {text!r}: bad #hex value") from None
    # Only single-byte tags and short/long definite lengths: what string
    # attribute values use.
    if len(der) < 2 or der[0] not in (0x0C, 0x13, 0x14, 0x16, 0x1A, 0x1E):
        raise DNError(f"DN {text!r}: #hex value is not an encoded string")
    length, offset = der[1], 2
    if length & 0x80:
        count = length & 0x7F
        if count == 0 or count > 4 or len(der) < 2 + count:
            raise DNError(f"DN {text!r}: bad length in #hex value")
        length, offset = int.from_bytes(der[2 : 2 + count], "big"), 2 + count
    body = der[offset:]
    if len(body) != length:
        raise DNError(f"DN {text!r}: bad length in #hex value")
    codec = "utf-16-be" if der[0] == 0x1E else "utf-8" if der[0] == 0x0C else "latin-1"
    try:
        return body.decode(codec)
    except UnicodeDecodeError:
        raise DNError(f"DN {text!r}: #hex value is not valid text") from None


def _is_stop(text: str, pos: int, stops: str, openssl_form: bool) -> bool:
    if text[pos] not in stops:
        return False
    return not openssl_form or _TYPE_AHEAD.match(text, pos + 1) is not None


def _read_value(text: str, pos: int, stops: str, openssl_form: bool) -> tuple[str, int]:
    """Read an escaped attribute value starting at ``pos`` up to an
    unescaped separator in ``stops`` (or the end). Returns (value, pos)."""
    raw = bytearray()
    length = len(text)
    while pos < length and not _is_stop(text, pos, stops, openssl_form):
        char = text[pos]
        if char == "\\":
            if pos + 1 >= length:
                raise DNError(f"DN {text!r}: dangling backslash")
            if _HEX_PAIR.fullmatch(text, pos + 1, pos + 3):
                raw.append(int(text[pos + 1 : pos + 3], 16))
                pos += 3
                continue
            # OpenSSL writes non-ASCII bytes as \xHH.
            if text[pos + 1] == "x" and _HEX_PAIR.fullmatch(text, pos + 2, pos + 4):
                raw.append(int(text[pos + 2 : pos + 4], 16))
                pos += 4
                continue
            raw += text[pos + 1].encode()
            pos += 2
            continue
        if char == '"' and not raw.strip() and not openssl_form:
            # A legacy RFC 2253 quoted value: everything up to the closing quote.
            pos += 1
            while pos < length and text[pos] != '"':
                if text[pos] == "\\" and pos + 1 < length:
                    pos += 1
                raw += text[pos].encode()
                pos += 1
            if pos >= length:
                raise DNError(f"DN {text!r}: unterminated quoted value")
            pos += 1
            continue
        raw += char.encode()
        pos += 1
    return _decode_utf8(raw, text), pos


def _parse_attribute(text: str, pos: int, stops: str, openssl_form: bool) -> tuple[Attribute, int]:
    equals = text.find("=", pos)
    if equals < 0:
        raise DNError(f"DN {text!r}: expected TYPE=value at position {pos}")
    type_name = text[pos:equals]
    if not type_name.strip() or any(c in type_name for c in stops):
        raise DNError(f"DN {text!r}: expected TYPE=value at position {pos}")
    oid = oid_for_attribute_name(type_name)
    value_start = equals + 1
    while value_start < len(text) and text[value_start] == " ":
        value_start += 1
    # RFC 4514 '#hex' values; OpenSSL's form has no such thing.
    if text.startswith("#", value_start) and not openssl_form:
        end = value_start + 1
        while end < len(text) and not _is_stop(text, end, stops, openssl_form):
            end += 1
        return (oid, _decode_ber_string(text[value_start + 1 : end].strip(), text)), end
    value, end = _read_value(text, value_start, stops, openssl_form)
    return (oid, value), end


def _parse_separated(text: str, rdn_separator: str, openssl_form: bool) -> list[list[Attribute]]:
    """Parse RDNs separated by ``rdn_separator``, AVAs by ``+``, in the order
    they are written. In ``openssl_form`` a separator counts only before a
    ``TYPE=``, and quotes and ``#hex`` values mean nothing special."""
    rdns: list[list[Attribute]] = [[]]
    pos = 0
    stops = rdn_separator + "+"
    while True:
        attribute, pos = _parse_attribute(text, pos, stops, openssl_form)
        rdns[-1].append(attribute)
        if pos >= len(text):
            return rdns
        if text[pos] == rdn_separator:
            rdns.append([])
        pos += 1
        if pos >= len(text):
            raise DNError(f"DN {text!r}: ends with a separator")


def parse_rfc4514(text: str) -> DistinguishedName:
    """Parse an RFC 4514 string (most specific RDN first).

    Liberal in what it accepts: spaces around separators (Java's
    ``X500Principal`` style), RFC 2253 quoted values, ``#hex`` values,
    ``\\HH`` escapes, long attribute names and numeric OIDs.
    """
    body = text.lstrip()
    if not body:
        raise DNError("empty DN")
    return _make(reversed(_parse_separated(body, ",", openssl_form=False)))


def parse_openssl(text: str) -> DistinguishedName:
    """Parse OpenSSL's one-line form ``/C=es/O=REE/CN=a`` (certificate order)."""
    body = text.lstrip()
    if not body.startswith("/") or body == "/":
        raise DNError(f"DN {text!r}: the OpenSSL form starts with '/'")
    return _make(_parse_separated(body[1:], "/", openssl_form=True))


def parse_dn(text: str) -> DistinguishedName:
    """Parse a DN in either string form: OpenSSL's when it starts with ``/``,
    RFC 4514 otherwise. A leading ``subject=`` (from ``openssl x509
    -subject``) is ignored."""
    body = text.lstrip()
    if body[:8].casefold() == "subject=":
        body = body[8:].lstrip()
    if body.startswith("/"):
        return parse_openssl(body)
    return parse_rfc4514(body)


# --- certificate forms ----------------------------------------------------------


def dn_from_name(name: x509.Name) -> DistinguishedName:
    """The DN of a ``cryptography`` ``Name`` (e.g. ``cert.subject``)."""
    rdns = []
    for rdn in name.rdns:
        attributes = []
        for attribute in rdn:
            value = attribute.value
            text = value if isinstance(value, str) else "#" + bytes(value).hex()
            attributes.append((attribute.oid.dotted_string, text))
        rdns.append(attributes)
    return _make(rdns)


def dn_from_der(der: bytes) -> DistinguishedName:
    """The subject DN of a DER certificate, e.g.
    ``ssl_object.getpeercert(binary_form=True)``."""
    try:
        certificate = x509.load_der_x509_certificate(der)
        return dn_from_name(certificate.subject)
    except ValueError as exc:
        raise DNError(f"not a DER certificate: {exc}") from None


PeerCertSubject = Sequence[Sequence[Sequence[str]]]
"""``getpeercert()["subject"]``: RDNs of ``(long name, value)`` pairs."""


def dn_from_getpeercert(subject: PeerCertSubject) -> DistinguishedName:
    """The DN from ``ssl.SSLSocket.getpeercert()["subject"]``: a tuple of
    RDNs (certificate order), each a tuple of ``(long name, value)`` pairs."""
    rdns = []
    try:
        for rdn in subject:
            attributes = []
            for name, value in rdn:
                if not isinstance(name, str) or not isinstance(value, str):
                    raise DNError("getpeercert subject: names and values must be strings")
                attributes.append((oid_for_attribute_name(name), value))
            rdns.append(attributes)
    except (TypeError, ValueError) as exc:
        if isinstance(exc, DNError):
            raise
        raise DNError(f"getpeercert subject has an unexpected shape: {exc}") from None
    return _make(rdns)


DNLike = DistinguishedName | str | bytes | x509.Name | x509.Certificate | PeerCertSubject


def normalize_dn(dn: DNLike) -> DistinguishedName:
    """Normalise any supported DN spelling; raises :class:`DNError`.

    ``str``: RFC 4514 or OpenSSL one-line; ``bytes``: a DER certificate;
    ``x509.Name`` / ``x509.Certificate``; a ``getpeercert()`` subject tuple.
    """
    if isinstance(dn, DistinguishedName):
        return dn
    if isinstance(dn, str):
        return parse_dn(dn)
    if isinstance(dn, bytes | bytearray | memoryview):
        return dn_from_der(bytes(dn))
    if isinstance(dn, x509.Name):
        return dn_from_name(dn)
    if isinstance(dn, x509.Certificate):
        return dn_from_name(dn.subject)
    # tuple | list rather than Sequence: mypy would not narrow a Sequence
    # check from bytes (a Sequence too, handled above) in the union.
    if isinstance(dn, tuple | list):
        return dn_from_getpeercert(dn)
    raise DNError(f"cannot read a DN from a {type(dn).__name__}")


def dn_matches(left: DNLike, right: DNLike) -> bool:
    """True when both spell the same DN; an unparseable one matches nothing."""
    try:
        return normalize_dn(left) == normalize_dn(right)
    except DNError:
        return False

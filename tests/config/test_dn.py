"""DN normalisation: every spelling of a DN compares equal, others differ."""

from __future__ import annotations

import ssl
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from hypothesis import assume, given
from hypothesis import strategies as st

from concentrador.config.dn import (
    DNError,
    dn_from_der,
    dn_from_getpeercert,
    dn_from_name,
    dn_matches,
    normalize_dn,
    parse_dn,
    parse_openssl,
    parse_rfc4514,
)

REE = "CN=crec-client-1,CN=CREC,OU=Concentradores,O=REE,C=es"
REE_OPENSSL = "/C=es/O=REE/OU=Concentradores/CN=CREC/CN=crec-client-1"

_KEY = ec.generate_private_key(ec.SECP256R1())
_SHORT = {
    NameOID.COMMON_NAME: "CN",
    NameOID.ORGANIZATION_NAME: "O",
    NameOID.ORGANIZATIONAL_UNIT_NAME: "OU",
    NameOID.LOCALITY_NAME: "L",
    NameOID.STATE_OR_PROVINCE_NAME: "ST",
    NameOID.USER_ID: "UID",
    NameOID.COUNTRY_NAME: "C",
}


def _self_signed(name: x509.Name) -> x509.Certificate:
    now = datetime.now(UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(_KEY.public_key())
        .serial_number(1)
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=1))
        .sign(_KEY, hashes.SHA256())
    )


def _getpeercert_subject(certificate: x509.Certificate) -> tuple:
    """What ``SSLSocket.getpeercert()["subject"]`` gives, from CPython itself."""
    with tempfile.NamedTemporaryFile(suffix=".pem") as handle:
        handle.write(certificate.public_bytes(serialization.Encoding.PEM))
        handle.flush()
        return ssl._ssl._test_decode_cert(handle.name)["subject"]  # type: ignore[attr-defined]


def _openssl_form(name: x509.Name) -> str:
    """OpenSSL one-line form, escaping the separators with backslashes."""

    def escape(value: str) -> str:
        return "".join("\\" + c if c in "/+\\" else c for c in value)

    return "/" + "/".join(
        "+".join(f"{_SHORT[a.oid]}={escape(a.value)}" for a in rdn) for rdn in name.rdns
    )


def _reference_key(name: x509.Name) -> tuple:
    return tuple(
        tuple(sorted((a.oid.dotted_string, a.value.strip().casefold()) for a in rdn))
        for rdn in name.rdns
    )


def _ascii_swapcase(text: str) -> str:
    return "".join(c.swapcase() if c.isascii() else c for c in text)


_values = st.text(
    alphabet=st.characters(blacklist_categories=("Cc", "Cs")), min_size=1, max_size=12
).filter(lambda v: v.strip())
_attribute_oids = st.sampled_from(
    [
        NameOID.COMMON_NAME,
        NameOID.ORGANIZATION_NAME,
        NameOID.ORGANIZATIONAL_UNIT_NAME,
        NameOID.LOCALITY_NAME,
        NameOID.STATE_OR_PROVINCE_NAME,
        NameOID.USER_ID,
    ]
)


@st.composite
def _rdns(draw: st.DrawFn) -> x509.RelativeDistinguishedName:
    oids = draw(st.lists(_attribute_oids, min_size=1, max_size=2, unique=True))
    return x509.RelativeDistinguishedName([x509.NameAttribute(o, draw(_values)) for o in oids])


@st.composite
def _names(draw: st.DrawFn) -> x509.Name:
    rdns = []
    if draw(st.booleans()):
        country = draw(st.text(alphabet="ESPTesptFR", min_size=2, max_size=2))
        rdns.append(
            x509.RelativeDistinguishedName([x509.NameAttribute(NameOID.COUNTRY_NAME, country)])
        )
    rdns += draw(st.lists(_rdns(), min_size=1, max_size=5))
    return x509.Name(rdns)


@given(_names())
def test_every_spelling_of_a_dn_is_equal(name: x509.Name) -> None:
    certificate = _self_signed(name)
    spellings = {
        "x509.Name": dn_from_name(name),
        "RFC 4514 (cryptography)": parse_dn(name.rfc4514_string()),
        "RFC 4514 case-swapped": parse_dn(_ascii_swapcase(name.rfc4514_string())),
        "OpenSSL one-line": parse_dn(_openssl_form(name)),
        "getpeercert()": dn_from_getpeercert(_getpeercert_subject(certificate)),
        "DER": dn_from_der(certificate.public_bytes(serialization.Encoding.DER)),
        "our RFC 4514 rendering": parse_dn(dn_from_name(name).text),
    }
    expected = dn_from_name(name)
    assert expected.rdns == _reference_key(name)
    for spelling, dn in spellings.items():
        assert dn == expected, spelling


@given(_names(), _names())
def test_different_dns_differ(first: x509.Name, second: x509.Name) -> None:
    assume(_reference_key(first) != _reference_key(second))
    assert parse_dn(first.rfc4514_string()) != parse_dn(second.rfc4514_string())
    assert parse_dn(_openssl_form(first)) != dn_from_name(second)
    assert not dn_matches(first.rfc4514_string(), second)


def test_ree_dn_in_both_forms_and_attribute_spellings() -> None:
    expected = parse_rfc4514(REE)
    assert parse_openssl(REE_OPENSSL) == expected
    assert parse_dn("cn=CREC-CLIENT-1, cn=crec, ou=concentradores, o=ree, c=ES") == expected
    assert (
        parse_dn(
            "commonName=crec-client-1,2.5.4.3=CREC,OID.2.5.4.11=Concentradores,"
            "organizationName=REE,countryName=es"
        )
        == expected
    )
    assert parse_dn(f"subject={REE_OPENSSL}") == expected
    assert parse_dn("/C=es/O=REE/OU=Concentradores/CN= CREC /CN=crec-client-1 ") == expected
    assert expected.text == REE
    assert str(parse_openssl(REE_OPENSSL)) == REE


def test_repeated_cns_keep_their_order() -> None:
    assert parse_dn("CN=a,CN=b,O=REE,C=es") != parse_dn("CN=b,CN=a,O=REE,C=es")
    assert parse_dn("CN=a,CN=b,O=REE,C=es") == parse_dn("/C=es/O=REE/CN=b/CN=a")


def test_missing_or_extra_rdn_does_not_match() -> None:
    assert parse_dn(REE) != parse_dn("CN=crec-client-1,CN=CREC,O=REE,C=es")
    assert parse_dn(REE) != parse_dn("CN=x," + REE)


@pytest.mark.parametrize(
    ("spelling", "expected_rdns"),
    [
        (r"CN=a\,b", ((("2.5.4.3", "a,b"),),)),
        ("CN=a\\ ", ((("2.5.4.3", "a"),),)),  # an escaped trailing space
        ('/CN="a"/O=#01', ((("2.5.4.3", '"a"'),), (("2.5.4.10", "#01"),))),
        (r"CN=a\2Cb", ((("2.5.4.3", "a,b"),),)),
        (r"CN=caf\C3\A9", ((("2.5.4.3", "café"),),)),
        (r"/CN=caf\xC3\xA9", ((("2.5.4.3", "café"),),)),
        ('CN="a, b"', ((("2.5.4.3", "a, b"),),)),
        ("CN=#0c03616263", ((("2.5.4.3", "abc"),),)),
        ("CN=a+UID=b", ((("0.9.2342.19200300.100.1.1", "b"), ("2.5.4.3", "a")),)),
        ("/CN=a+UID=b", ((("0.9.2342.19200300.100.1.1", "b"), ("2.5.4.3", "a")),)),
        # OpenSSL's "compat" output does not escape '/' or '+' in values.
        ("/O=x/CN=a/b+c", ((("2.5.4.10", "x"),), (("2.5.4.3", "a/b+c"),))),
    ],
)
def test_escapes_and_multivalued_rdns(spelling: str, expected_rdns: tuple) -> None:
    assert parse_dn(spelling).rdns == expected_rdns


@pytest.mark.parametrize(
    "bad",
    ["", "   ", "CN", "CN=a,", "XX=a", "CN=a\\", "/", "CN=#zz", "CN=#0201ff", 'CN="abc', "CN=\\ff"],
)
def test_malformed_dns_raise_one_line_errors(bad: str) -> None:
    with pytest.raises(DNError) as info:
        parse_dn(bad)
    assert "\n" not in str(info.value)


def test_hostile_inputs_to_certificate_forms_raise_dn_error() -> None:
    with pytest.raises(DNError):
        dn_from_der(b"\x30\x03\x02\x01\x00")
    with pytest.raises(DNError):
        dn_from_getpeercert(((("commonName",),),))
    with pytest.raises(DNError):
        dn_from_getpeercert(((("noSuchAttribute", "x"),),))
    with pytest.raises(DNError):
        normalize_dn(42)  # type: ignore[arg-type]


def test_normalize_dn_accepts_every_source(tmp_path: Path) -> None:
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "es"),
            x509.NameAttribute(NameOID.COMMON_NAME, "CREC"),
        ]
    )
    certificate = _self_signed(name)
    expected = parse_dn("CN=crec,C=ES")
    der = certificate.public_bytes(serialization.Encoding.DER)
    for source in (name, certificate, der, _getpeercert_subject(certificate), "/C=es/CN=CREC"):
        assert normalize_dn(source) == expected
    assert normalize_dn(expected) is expected


def test_starts_with_country_flags_root_first_comma_form() -> None:
    assert parse_dn("C=es,O=REE,CN=x").starts_with_country
    assert not parse_dn(REE).starts_with_country
    assert not parse_dn("C=es").starts_with_country

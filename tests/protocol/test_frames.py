"""The per-file envelopes written from frames are the bytes lxml writes, for any value.

``recoger_request``, ``confirmacion_request`` and ``recoger_response`` must
give exactly ``build_envelope(Model(...).to_xml(), ...)``, escaping included,
and fail exactly as it fails for values XML cannot carry.
"""

from __future__ import annotations

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from concentrador.protocol import (
    SOAP11,
    SOAP12,
    ConfirmacionRecepcionFichero,
    Fichero,
    ProtocolError,
    RecogerFichero,
    RecogerFicheroResponse,
    SoapVersion,
    build_envelope,
    confirmacion_request,
    parse_envelope,
    recoger_request,
    recoger_response,
)
from concentrador.protocol.messages import frames

VERSIONS = st.sampled_from([SOAP11, SOAP12])
# Names: anything at all (control characters, surrogates, U+FFFE, markup,
# CR, the frames' own private-use marker characters), and realistic ones.
ANY_TEXT = st.text(max_size=40) | st.text(
    alphabet=st.sampled_from("aZ09_.-&<>\"'\r\n\t \x00\x01\x7f\x85\xa0\ud800\ue000\ufffe\uffff€𝄞"),
    max_size=20,
)
NAMES = ANY_TEXT | st.from_regex(
    r"[A-Z][0-9]_[0-9]{4}_[0-9]{8}\.[0-9]{1,2}(\.bz2)?", fullmatch=True
)
NODE_IDS = st.sampled_from(["0086", "1234", "R&D<1>", "a\rb", "\ue0000\ue000"])

TRICKY = ["", "a&b", "<x>", "]]>", "a\rb", "a\r\nb", " spaced ", "ñandú.bz2", "\x00", "\ud800"]


def outcome(build: object, *args: object, **kwargs: object) -> tuple[str, object]:
    """What a builder gives: ("ok", bytes) or ("error", (type, message))."""
    try:
        return "ok", build(*args, **kwargs)  # type: ignore[operator]
    except ProtocolError as exc:
        return "error", (type(exc), str(exc))


@settings(max_examples=400)
@given(name=NAMES, node=NODE_IDS, version=VERSIONS)
@example(name="P1_0086_20240101.0.bz2", node="0086", version=SOAP11)
def test_recoger_request_is_lxml_bytes(name: str, node: str, version: SoapVersion) -> None:
    expected = outcome(
        lambda: build_envelope(RecogerFichero(name).to_xml(), version=version, concentrador_id=node)
    )
    assert outcome(recoger_request, name, concentrador_id=node, version=version) == expected


@settings(max_examples=400)
@given(name=NAMES, code=st.integers(-3, 12), node=NODE_IDS, version=VERSIONS)
def test_confirmacion_request_is_lxml_bytes(
    name: str, code: int, node: str, version: SoapVersion
) -> None:
    expected = outcome(
        lambda: build_envelope(
            ConfirmacionRecepcionFichero(name, code).to_xml(),
            version=version,
            concentrador_id=node,
        )
    )
    got = outcome(confirmacion_request, name, code, concentrador_id=node, version=version)
    assert got == expected


@settings(max_examples=400)
@given(
    name=NAMES,
    checksum=ANY_TEXT | st.from_regex(r"[0-9a-fA-F]{32}", fullmatch=True),
    version=VERSIONS,
)
def test_recoger_response_is_lxml_bytes(name: str, checksum: str, version: SoapVersion) -> None:
    fichero = Fichero(name, checksum)
    expected = outcome(
        lambda: build_envelope(RecogerFicheroResponse(fichero).to_xml(), version=version)
    )
    assert outcome(recoger_response, fichero, version) == expected


@pytest.mark.parametrize("name", TRICKY)
def test_tricky_names_round_trip_or_fail_alike(name: str) -> None:
    got = outcome(recoger_request, name, concentrador_id="0086")
    expected = outcome(
        lambda: build_envelope(RecogerFichero(name).to_xml(), concentrador_id="0086")
    )
    assert got == expected
    if got[0] == "ok" and name.strip(" \t\r\n"):  # a blank name is refused when read
        envelope = parse_envelope(got[1])  # type: ignore[arg-type]
        assert RecogerFichero.from_xml(envelope.body_elements).nombre_fichero == name


def test_frames_are_cached_per_shape() -> None:
    recoger_request("a", concentrador_id="0086")
    recoger_request("b", concentrador_id="0086")
    info = frames._recoger_request_frame.cache_info()
    assert info.hits >= 1


def test_a_node_id_holding_a_marker_falls_back_to_lxml() -> None:
    node = frames._marker(0)
    assert frames._recoger_request_frame(node, SOAP11) is None
    assert recoger_request("x", concentrador_id=node) == build_envelope(
        RecogerFichero("x").to_xml(), concentrador_id=node
    )

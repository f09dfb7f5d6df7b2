"""The per-file envelopes written from byte frames: recogerFichero, its answer, confirmacion.

Collecting small files costs one recogerFichero and one
confirmacionRecepcionFichero per file, on both sides. Building each envelope
with lxml (elements, a deep copy, serialising) cost ~17 µs per message; most
of it rebuilds the same bytes every time, only a file name (and a checksum)
changes. So each shape is built by lxml once (per SOAP version, node id and
code), with a marker where a value goes, and cut at the markers into a
:class:`_Frame`; a message is then the frame's pieces joined around the
values, escaped as lxml escapes text. The result is byte-identical to
``build_envelope(Model(...).to_xml(), ...)``: the frame comes from lxml
itself, and tests/protocol/test_frames.py checks the escaping against lxml
for arbitrary names (hypothesis). A value XML cannot carry (a control
character, a lone surrogate, U+FFFE) is not escaped here: the message is
built by lxml instead, which raises the same error as before.
"""

from __future__ import annotations

import functools
import re

from concentrador.protocol.messages.confirmacion import ConfirmacionRecepcionFichero
from concentrador.protocol.messages.fichero import Fichero
from concentrador.protocol.messages.recoger import RecogerFichero, RecogerFicheroResponse
from concentrador.protocol.soapenv import SOAP11, SoapVersion, build_envelope

__all__ = ["confirmacion_request", "recoger_request", "recoger_response"]

# Characters XML 1.0 can carry (what lxml accepts in text), and the names that
# need no escaping at all (P.O. 10.11 names: the usual case, one regex match).
_XML_CHARS = re.compile("[\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]*")
_PLAIN = re.compile(r"[A-Za-z0-9_.+-]*")
# What libxml2 escapes in text content: the markup characters and CR (which a
# parser would otherwise normalise to LF).
_TEXT_ESCAPES = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;", "\r": "&#13;"})


def _marker(index: int) -> str:
    # Private-use characters: lxml writes them as they are, and no frame text
    # (namespaces, element names, a node id) holds them by accident.
    return f"\ue000{index}\ue000"


def _text(value: str) -> bytes | None:
    """``value`` as lxml writes it in text content; None if XML cannot carry it."""
    if _PLAIN.fullmatch(value):
        return value.encode("ascii")
    if _XML_CHARS.fullmatch(value) is None:
        return None
    return value.translate(_TEXT_ESCAPES).encode("utf-8")


class _Frame:
    """An envelope cut at its value markers: ``pieces[0] v0 pieces[1] v1 ... pieces[n]``."""

    __slots__ = ("_pieces",)

    def __init__(self, pieces: tuple[bytes, ...]) -> None:
        self._pieces = pieces

    @classmethod
    def cut(cls, envelope: bytes, count: int) -> _Frame | None:
        """The frame of ``envelope``; None unless each marker is there exactly once
        (a node id holding a marker's characters: such messages are built by lxml)."""
        markers = [_marker(index).encode("utf-8") for index in range(count)]
        if any(envelope.count(marker) != 1 for marker in markers):
            return None
        pieces: list[bytes] = []
        rest = envelope
        for marker in markers:
            head, _, rest = rest.partition(marker)
            pieces.append(head)
        pieces.append(rest)
        return cls(tuple(pieces))

    def fill(self, *values: str) -> bytes | None:
        """The envelope with ``values`` in place; None when one cannot be written here."""
        pieces = self._pieces
        out = [pieces[0]]
        for value, piece in zip(values, pieces[1:], strict=True):
            text = _text(value)
            if text is None:
                return None
            out.append(text)
            out.append(piece)
        return b"".join(out)


@functools.lru_cache(maxsize=16)
def _recoger_request_frame(concentrador_id: str, version: SoapVersion) -> _Frame | None:
    message = RecogerFichero(_marker(0))
    envelope = build_envelope(message.to_xml(), version=version, concentrador_id=concentrador_id)
    return _Frame.cut(envelope, 1)


@functools.lru_cache(maxsize=32)
def _confirmacion_request_frame(
    concentrador_id: str, code: int, version: SoapVersion
) -> _Frame | None:
    message = ConfirmacionRecepcionFichero(_marker(0), code)
    envelope = build_envelope(message.to_xml(), version=version, concentrador_id=concentrador_id)
    return _Frame.cut(envelope, 1)


@functools.lru_cache(maxsize=4)
def _recoger_response_frame(version: SoapVersion) -> _Frame | None:
    message = RecogerFicheroResponse(Fichero(_marker(0), _marker(1)))
    return _Frame.cut(build_envelope(message.to_xml(), version=version), 2)


def recoger_request(name: str, *, concentrador_id: str, version: SoapVersion = SOAP11) -> bytes:
    """``build_envelope(RecogerFichero(name).to_xml(), ...)``, from a frame."""
    frame = _recoger_request_frame(concentrador_id, version)
    envelope = frame.fill(name) if frame is not None else None
    if envelope is None:
        message = RecogerFichero(name)
        return build_envelope(message.to_xml(), version=version, concentrador_id=concentrador_id)
    return envelope


def confirmacion_request(
    name: str, code: int, *, concentrador_id: str, version: SoapVersion = SOAP11
) -> bytes:
    """``build_envelope(ConfirmacionRecepcionFichero(name, code).to_xml(), ...)``, from a frame."""
    code = int(code)
    frame = _confirmacion_request_frame(concentrador_id, code, version)
    envelope = frame.fill(name) if frame is not None else None
    if envelope is None:
        message = ConfirmacionRecepcionFichero(name, code)
        return build_envelope(message.to_xml(), version=version, concentrador_id=concentrador_id)
    return envelope


def recoger_response(fichero: Fichero, version: SoapVersion) -> bytes:
    """``build_envelope(RecogerFicheroResponse(fichero).to_xml(), ...)``, from a frame."""
    frame = _recoger_response_frame(version)
    envelope = frame.fill(fichero.nombre, fichero.checksum) if frame is not None else None
    if envelope is None:
        return build_envelope(RecogerFicheroResponse(fichero).to_xml(), version=version)
    return envelope

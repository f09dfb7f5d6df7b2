"""Tests for concentrador.protocol.names (CPCSCC.md §4.5 invalid names)."""

from __future__ import annotations

import os.path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from concentrador.protocol.errors import ProtocolError
from concentrador.protocol.names import (
    MAX_NAME_BYTES,
    InvalidFileName,
    is_valid_peer_filename,
    validate_peer_filename,
)


@pytest.mark.parametrize(
    "name",
    [
        "F1_0086_20040612_20040617.9.bz2",
        "P1_CEMI_20031120.1.3_3",
        "a",
        "a.b",
        "name with inner spaces.bz2",
        "ñandú_ü.bz2",
        "x" * MAX_NAME_BYTES,
        "é" * (MAX_NAME_BYTES // 2),  # 254 bytes
        "a.",
        "~",
    ],
)
def test_accepted_names_come_back_unchanged(name: str) -> None:
    assert validate_peer_filename(name) is name
    assert is_valid_peer_filename(name)


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("", "empty"),
        ("a/b", "separator"),
        ("/etc/passwd", "separator"),
        ("..\\x", "separator"),
        ("a\\b", "separator"),
        ("..", "dotdot"),
        ("a..b", "dotdot"),
        (".", "dotfile"),
        (".hidden", "dotfile"),
        ("a\x00b", "control"),
        ("a\nb", "control"),
        ("a\tb", "control"),
        ("a\x7fb", "control"),  # DEL
        ("a\x85b", "control"),  # C1 (NEL)
        ("a\x9bb", "control"),  # C1 (CSI)
        ("a\u202eb", "control"),  # right-to-left override
        ("a\u200bb", "control"),  # zero-width space
        ("a\u2028b", "control"),  # line separator
        ("a\ud800b", "control"),  # lone surrogate
        (" a", "whitespace"),
        ("a ", "whitespace"),
        ("a\u3000", "whitespace"),  # ideographic space
        ("x" * (MAX_NAME_BYTES + 1), "too-long"),
        ("é" * 128, "too-long"),  # 128 chars, 256 bytes
        ("x" * 10_000_000, "too-long"),
    ],
)
def test_refused_names_say_why(name: str, reason: str) -> None:
    with pytest.raises(InvalidFileName) as info:
        validate_peer_filename(name)
    error = info.value
    assert error.reason == reason
    assert isinstance(error, ProtocolError)
    message = str(error)
    # One line, ASCII-only, bounded: safe for a log line or a faultstring.
    assert message.isascii() and "\n" not in message and len(message) < 200
    assert not is_valid_peer_filename(name)


def test_non_text_is_refused() -> None:
    with pytest.raises(InvalidFileName) as info:
        validate_peer_filename(b"abc")  # type: ignore[arg-type]
    assert info.value.reason == "not-text"


@given(st.text(max_size=300))
def test_accepted_names_never_escape_their_folder(name: str) -> None:
    if not is_valid_peer_filename(name):
        return
    folder = "/srv/spool/peer/inbound"
    joined = os.path.join(folder, name)
    normalised = os.path.normpath(joined)
    assert os.path.dirname(normalised) == folder
    assert os.path.basename(normalised) == name
    assert len(name.encode("utf-8")) <= MAX_NAME_BYTES
    assert not name.startswith(".")


@given(st.text(alphabet=st.characters(codec="utf-8"), min_size=1, max_size=40))
def test_path_tricks_are_always_refused(stem: str) -> None:
    for name in (f"{stem}/x", f"x\\{stem}", f"{stem}\x00", f"../{stem}", f"{stem}/.."):
        assert not is_valid_peer_filename(name)


names_from_spool_alphabet = st.text(
    alphabet="ABCDEFPQ0123456789_.-", min_size=1, max_size=MAX_NAME_BYTES
)


@given(names_from_spool_alphabet)
def test_p_o_10_11_style_names_pass_unless_dotted_badly(name: str) -> None:
    expected = ".." not in name and not name.startswith(".")
    assert is_valid_peer_filename(name) is expected

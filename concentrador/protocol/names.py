"""Validation of file names that arrive from a peer.

A peer chooses the names in ``enviarFichero``, ``recogerFichero``,
``confirmacionRecepcionFichero`` and in its listings, and we use them as file
names in our spool. Treat them as hostile: a name that passes here, joined to
any folder, stays a direct child of that folder (tested with hypothesis).

CPCSCC.md §4.5 lists the minimum (a path separator, ``..``, NUL, a control
character, over 255 bytes). The project also refuses, by decision:

* ``..`` anywhere, not only as a whole component: separators are already
  refused, and no P.O. 10.11 name contains ``..``, so the stricter reading
  costs nothing and needs no OS-specific reasoning;
* a leading ``.``: it would hide the file as a dotfile and could collide with
  the spool's own temporary names, which start with ``.``;
* leading or trailing whitespace: invisible to operators, and stripped by
  some tools, so two names could denote one file;
* Unicode format characters (bidi overrides, zero-width), line/paragraph
  separators and lone surrogates, besides C0, DEL and C1 controls: they let a
  name lie about itself in logs and operator listings.
"""

from __future__ import annotations

import unicodedata

from concentrador.protocol.errors import ProtocolError

MAX_NAME_BYTES = 255
"""Longest accepted name, in UTF-8 bytes (the usual file-system limit)."""

# Unicode general categories refused anywhere in a name: Cc (C0, DEL, C1),
# Cf (format: bidi overrides, zero-width), Cs (lone surrogates), Zl, Zp.
_FORBIDDEN_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})

_SHOWN_CHARS = 80


class InvalidFileName(ProtocolError):
    """A peer-supplied file name is unsafe to use; ``reason`` says why.

    ``reason`` is a short stable token (``"empty"``, ``"separator"``,
    ``"dotdot"``, ``"dotfile"``, ``"control"``, ``"whitespace"``,
    ``"too-long"``, ``"not-text"``) for counters and tests; ``str()`` is the
    one-line human message.
    """

    def __init__(self, name: object, reason: str, message: str) -> None:
        self.name = name
        self.reason = reason
        super().__init__(f"invalid file name {_shown(name)}: {message}")


def _shown(name: object) -> str:
    """A log-safe rendering: ASCII escapes only, bounded (a name may be hostile)."""
    if not isinstance(name, str):
        return f"<{type(name).__name__}>"
    text = ascii(name[:_SHOWN_CHARS])  # slice first: never escape a megabyte
    if len(name) <= _SHOWN_CHARS and len(text) <= _SHOWN_CHARS:
        return text
    return f"{text[:_SHOWN_CHARS]}... ({len(name)} chars)"


def validate_peer_filename(name: str) -> str:
    """Return ``name`` unchanged if it is safe as a spool file name, else raise.

    Raises :class:`InvalidFileName` with the first problem found.
    """
    if not isinstance(name, str):
        raise InvalidFileName(name, "not-text", "a file name must be text")
    if not name:
        raise InvalidFileName(name, "empty", "the name is empty")
    if len(name) > MAX_NAME_BYTES:
        # Every character is at least one UTF-8 byte; refuse before scanning
        # a hostile megabyte-long name character by character.
        raise InvalidFileName(
            name, "too-long", f"it is {len(name)} characters long, over {MAX_NAME_BYTES} bytes"
        )
    for char in name:
        if char in "/\\":
            raise InvalidFileName(name, "separator", f"it contains the path separator {char!r}")
        if unicodedata.category(char) in _FORBIDDEN_CATEGORIES:
            raise InvalidFileName(
                name, "control", f"it contains the control or format character U+{ord(char):04X}"
            )
    if ".." in name:
        raise InvalidFileName(name, "dotdot", "it contains '..'")
    if name.startswith("."):
        raise InvalidFileName(name, "dotfile", "it starts with '.'")
    if name != name.strip():
        raise InvalidFileName(name, "whitespace", "it starts or ends with whitespace")
    # Surrogates were refused above, so encoding cannot fail here.
    size = len(name.encode("utf-8"))
    if size > MAX_NAME_BYTES:
        raise InvalidFileName(
            name, "too-long", f"it is {size} bytes long in UTF-8, over {MAX_NAME_BYTES}"
        )
    return name


def is_valid_peer_filename(name: str) -> bool:
    """True when :func:`validate_peer_filename` accepts ``name``."""
    try:
        validate_peer_filename(name)
    except InvalidFileName:
        return False
    return True

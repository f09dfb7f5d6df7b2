"""Typed, problem-collecting reads of parsed TOML values.

The loader must report *every* problem of a config in one pass (one line
each, naming the key path), not stop at the first. So readers here never
raise: they record a problem and return ``None``, and the loader carries on.
"""

from __future__ import annotations

import difflib
import os.path
import re
from collections.abc import Iterable
from datetime import date, datetime, time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

MISSING: Any = object()
"""Default marker: the key is required."""

ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,31}$")
"""Concentrator codes (``0086``, ``CREC``). They become spool folder names,
so they are kept to a safe alphabet."""


_LISTEN = re.compile(
    r"^(?:\[(?P<v6>[0-9A-Fa-f:.]+)\]|(?P<host>[A-Za-z0-9_.-]+)):(?P<port>[0-9]{1,5})$"
)


def parse_listen(text: str) -> tuple[str, int]:
    """``host:port`` (IPv6 as ``[::1]:8443``); raises ``ValueError``."""
    match = _LISTEN.match(text.strip())
    if match is None:
        raise ValueError(f"{text!r} is not host:port (IPv6 as [::1]:8443)")
    port = int(match["port"])
    if port > 65535:
        raise ValueError(f"{text!r}: port {port} is out of range 0..65535")
    return match["v6"] or match["host"], port


def parse_public_url(text: str) -> str:
    """An absolute ``http(s)://host[:port]/path`` URL, as given; raises ``ValueError``.

    It is what peers are told to call (the WSDL's address), so nothing a
    client could misread: no user, query, fragment, spaces or non-ASCII.
    """
    if not text.isascii() or any(ch.isspace() or not ch.isprintable() for ch in text):
        raise ValueError(f"{text!r} must be ASCII without spaces or control characters")
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{text!r} is not an absolute http:// or https:// URL")
    if parts.username is not None or parts.query or parts.fragment or "#" in text:
        raise ValueError(f"{text!r} must have no user, query or fragment")
    parts.port  # noqa: B018 - raises ValueError for a port that is no number 0..65535
    return text


def describe_type(value: object) -> str:
    """How a TOML value's type reads in a message."""
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, datetime | date | time):
        return "a date/time"
    return type(value).__name__


class Checker:
    """Collects problems while reading tables; ``base`` anchors relative paths."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.problems: list[str] = []

    def problem(self, key_path: str, message: str) -> None:
        self.problems.append(f"{key_path}: {message}")

    # --- tables ---------------------------------------------------------------

    def table(self, value: object, key_path: str, allowed: Iterable[str]) -> dict[str, Any] | None:
        """Check ``value`` is a table and report its unknown keys."""
        if not isinstance(value, dict):
            self.problem(key_path, f"expected a table, got {describe_type(value)}")
            return None
        allowed = list(allowed)
        for key in value:
            if key not in allowed:
                self.problem(key_path_of(key_path, key), "unknown key" + _suggest(key, allowed))
        return value

    def _absent(self, key_path: str, key: str, default: Any) -> Any:
        """The value of an absent key: its default, or None and a problem."""
        if default is MISSING:
            self.problem(key_path_of(key_path, key), "missing (required)")
            return None
        return default

    # --- scalars --------------------------------------------------------------

    def string(
        self,
        table: dict[str, Any],
        key: str,
        key_path: str,
        default: Any = MISSING,
        *,
        allow_empty: bool = True,
    ) -> str | None:
        if key not in table:
            return self._absent(key_path, key, default)
        value = table[key]
        if not isinstance(value, str):
            self.problem(
                key_path_of(key_path, key), f"expected a string, got {describe_type(value)}"
            )
            return None
        if not allow_empty and not value.strip():
            self.problem(key_path_of(key_path, key), "must not be empty")
            return None
        return value

    def integer(
        self,
        table: dict[str, Any],
        key: str,
        key_path: str,
        default: Any = MISSING,
        *,
        minimum: int | None = None,
        maximum: int | None = None,
    ) -> int | None:
        if key not in table:
            return self._absent(key_path, key, default)
        value = table[key]
        # TOML booleans are Python ints; refuse them explicitly.
        if isinstance(value, bool) or not isinstance(value, int):
            self.problem(
                key_path_of(key_path, key), f"expected an integer, got {describe_type(value)}"
            )
            return None
        if not _in_range(value, minimum, maximum):
            self.problem(
                key_path_of(key_path, key), f"{value} is out of range {_range(minimum, maximum)}"
            )
            return None
        return value

    def number(
        self,
        table: dict[str, Any],
        key: str,
        key_path: str,
        default: Any = MISSING,
        *,
        minimum: float | None = None,
        maximum: float | None = None,
    ) -> float | None:
        if key not in table:
            return self._absent(key_path, key, default)
        value = table[key]
        if isinstance(value, bool) or not isinstance(value, int | float):
            self.problem(
                key_path_of(key_path, key), f"expected a number, got {describe_type(value)}"
            )
            return None
        if value != value or not _in_range(value, minimum, maximum):  # NaN fails too
            self.problem(
                key_path_of(key_path, key), f"{value} is out of range {_range(minimum, maximum)}"
            )
            return None
        return value

    def boolean(
        self, table: dict[str, Any], key: str, key_path: str, default: Any = MISSING
    ) -> bool | None:
        if key not in table:
            return self._absent(key_path, key, default)
        value = table[key]
        if not isinstance(value, bool):
            self.problem(
                key_path_of(key_path, key), f"expected true or false, got {describe_type(value)}"
            )
            return None
        return value

    def string_list(
        self, table: dict[str, Any], key: str, key_path: str, default: Any = MISSING
    ) -> list[tuple[str, str]] | None:
        """A list of strings, as ``(key path of the item, value)`` pairs."""
        if key not in table:
            return self._absent(key_path, key, default)
        value = table[key]
        if not isinstance(value, list):
            self.problem(
                key_path_of(key_path, key),
                f"expected an array of strings, got {describe_type(value)}",
            )
            return None
        items = []
        for index, item in enumerate(value):
            item_path = f"{key_path_of(key_path, key)}[{index}]"
            if isinstance(item, str):
                items.append((item_path, item))
            else:
                self.problem(item_path, f"expected a string, got {describe_type(item)}")
        return items

    def path(
        self,
        table: dict[str, Any],
        key: str,
        key_path: str,
        default: Any = MISSING,
        *,
        must_be_file: bool = True,
        what: str = "file",
    ) -> Path | None:
        """A path relative to the config file's folder, made absolute."""
        text = self.string(table, key, key_path, default, allow_empty=False)
        if text is None:
            return None
        resolved = self.resolve(text)
        if must_be_file and not resolved.is_file():
            reason = "is not a file" if resolved.exists() else "not found"
            self.problem(key_path_of(key_path, key), f"{what} {reason}: {resolved}")
            return None
        return resolved

    def resolve(self, text: str) -> Path:
        """Relative paths resolve against the config file's folder."""
        path = Path(text).expanduser()
        if not path.is_absolute():
            path = self.base / path
        # normpath, not resolve(): keep symlinks as the operator wrote them.
        return Path(os.path.normpath(path))


def identifier(checker: Checker, key_path: str, value: str | None, what: str) -> str | None:
    """Validate a concentrator code against :data:`ID_PATTERN`."""
    if value is None:
        return None
    if not ID_PATTERN.match(value):
        checker.problem(
            key_path,
            f"{value!r} is not a valid {what} (1-32 letters, digits, '_' or '-', "
            "starting with a letter or digit)",
        )
        return None
    return value


def key_path_of(key_path: str, key: str) -> str:
    """``node`` + ``id`` -> ``node.id``, quoting keys TOML would quote."""
    if not key_path:
        return key
    # Keys that are not bare TOML keys are quoted, as TOML would.
    shown = key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else f'"{key}"'
    return f"{key_path}.{shown}"


def _suggest(key: str, allowed: list[str]) -> str:
    close = difflib.get_close_matches(key, allowed, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _in_range(value: float, minimum: float | None, maximum: float | None) -> bool:
    return (minimum is None or value >= minimum) and (maximum is None or value <= maximum)


def _range(minimum: float | None, maximum: float | None) -> str:
    if maximum is None:
        return f">= {minimum}"
    if minimum is None:
        return f"<= {maximum}"
    return f"{minimum}..{maximum}"

"""The cookies of one peer session: what ``Set-Cookie`` gave, what ``Cookie`` sends.

A session lives for one cycle against one endpoint, so domain, path and
expiry matching buy nothing here; what matters is sending back exactly what
the peer set. We keep our own store instead of aiohttp's jar because Axis's
SimpleAxisServer sets a *nameless* cookie (``Set-Cookie: 0``) and only
recognises the same bare value sent back. RFC 6265 §5.2 drops such a cookie
(so do aiohttp and ``http.cookies``); RFC 6265bis §5.6 keeps it as a cookie
with an empty name, serialised as just its value, which is what Axis needs.
``Set-Cookie2`` (RFC 2965, also sent by Axis) is read the same way.
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["CookieStore"]

#: A hostile peer must not make us grow or send an unbounded header.
MAX_COOKIES = 32
MAX_COOKIE_LENGTH = 4096


class CookieStore:
    """Cookies in the order first set; a later value of the same name replaces it."""

    def __init__(self) -> None:
        self._cookies: dict[str, str] = {}

    def absorb(self, header_values: Iterable[str]) -> None:
        """Take the values of every ``Set-Cookie``/``Set-Cookie2`` header of an answer."""
        for value in header_values:
            # Set-Cookie2 may fold several cookies into one header with commas;
            # Set-Cookie never does (its Expires dates contain commas), and
            # the CPCSCC peers we know send one cookie per header.
            self._absorb_one(value)

    def _absorb_one(self, value: str) -> None:
        if len(value) > MAX_COOKIE_LENGTH:
            return
        pair, _, attributes = value.partition(";")
        name, sep, cookie_value = pair.partition("=")
        if not sep:  # RFC 6265bis: no "=" means an empty name and this value
            name, cookie_value = "", pair
        name, cookie_value = name.strip(), cookie_value.strip()
        if not name and not cookie_value:
            return
        if _expires_now(attributes):
            self._cookies.pop(name, None)
            return
        if name not in self._cookies and len(self._cookies) >= MAX_COOKIES:
            return
        self._cookies[name] = cookie_value

    def header(self) -> str | None:
        """The ``Cookie`` request header, or None when there is nothing to send."""
        if not self._cookies:
            return None
        return "; ".join(
            value if not name else f"{name}={value}" for name, value in self._cookies.items()
        )

    def __len__(self) -> int:
        return len(self._cookies)

    def get(self, name: str) -> str | None:
        return self._cookies.get(name)


def _expires_now(attributes: str) -> bool:
    """``Max-Age=0`` (or negative) deletes the cookie."""
    for attribute in attributes.split(";"):
        key, _, value = attribute.partition("=")
        if key.strip().lower() == "max-age":
            try:
                return int(value.strip()) <= 0
            except ValueError:
                return False
    return False

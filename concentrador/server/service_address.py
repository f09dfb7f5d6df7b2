"""The service address the WSDL gives peers, never taken unchecked from a request.

``[server] public_url``, when set, is the address, as configured. Otherwise
it is made from the request: the scheme of the connection, the ``Host``
header only if it is a plain ``host[:port]`` (a DNS name, an IPv4 address or
a bracketed IPv6 address, a port of 0..65535), else the address the request
came in on; and the request's path if it is made of URL path characters
only, else ``/``. A hostile ``Host`` (``evil:port``, ``a b``, ``x/y``) thus
changes nothing but, at worst, the name in an answer to the one who sent it.
"""

from __future__ import annotations

import ipaddress
import re

from aiohttp import web

__all__ = ["service_address"]

_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_HOST = re.compile(
    rf"(?:(?P<name>{_LABEL}(?:\.{_LABEL})*\.?)|\[(?P<v6>[0-9A-Fa-f:.]+)\])"
    r"(?::(?P<port>[0-9]{1,5}))?"
)
# RFC 3986 path characters (pchar and "/"), percent escapes well formed.
_PATH = re.compile(r"/(?:[A-Za-z0-9\-._~!$&'()*+,;=:@/]|%[0-9A-Fa-f]{2})*")
_MAX_HOST = 255
_MAX_PATH = 1024


def _checked_host(host: str | None) -> str | None:
    """``host`` if it is a plain ``host[:port]``, else None."""
    if not host or len(host) > _MAX_HOST:
        return None
    match = _HOST.fullmatch(host)
    if match is None:
        return None
    if match["port"] is not None and int(match["port"]) > 65535:
        return None
    if match["v6"] is not None:
        try:
            ipaddress.IPv6Address(match["v6"])
        except ValueError:
            return None
    return host


def _own_address(request: web.BaseRequest) -> str:
    """``host:port`` of the socket the request came in on."""
    transport = request.transport
    sockname = transport.get_extra_info("sockname") if transport is not None else None
    if isinstance(sockname, tuple) and len(sockname) >= 2:
        host = str(sockname[0])
        return f"[{host}]:{sockname[1]}" if ":" in host else f"{host}:{sockname[1]}"
    return "localhost"


def service_address(request: web.BaseRequest, public_url: str | None) -> str:
    """The URL to put in the WSDL's ``soap:address`` for this request."""
    if public_url:
        return public_url
    host = _checked_host(request.headers.get("Host")) or _own_address(request)
    path = request.raw_path.partition("?")[0].partition("#")[0]
    if len(path) > _MAX_PATH or _PATH.fullmatch(path) is None:
        path = "/"
    scheme = "https" if request.secure else "http"
    return f"{scheme}://{host}{path}"

"""The WSDL 1.1 description of the five operations, served at ``?wsdl``.

The file ships as package data (``concentrador/protocol/data/cpcscc.wsdl``)
with a placeholder service address, ``PLACEHOLDER_LOCATION``.
:func:`render_wsdl` swaps in the server's own URL. That URL must come from
the configuration, never from the request's ``Host`` header, which the peer
controls.
"""

from __future__ import annotations

from importlib import resources
from urllib.parse import urlsplit

from lxml import etree

from concentrador.protocol.errors import ProtocolError

__all__ = ["PLACEHOLDER_LOCATION", "WsdlError", "load_wsdl", "render_wsdl"]

PLACEHOLDER_LOCATION = "https://concentrador.invalid/cpcscc"
_WSDL_SOAP_NAMESPACE = "http://schemas.xmlsoap.org/wsdl/soap/"


class WsdlError(ProtocolError):
    """The WSDL cannot be rendered for the given location."""


def load_wsdl() -> bytes:
    """The shipped WSDL, unchanged (service address is the placeholder)."""
    return resources.files("concentrador.protocol").joinpath("data/cpcscc.wsdl").read_bytes()


def render_wsdl(location_url: str) -> bytes:
    """The WSDL with ``location_url`` as the service address.

    Only absolute ``http``/``https`` URLs are accepted. The WSDL is our own
    trusted file, so it is parsed with plain lxml; the new address is set as
    an attribute so lxml escapes it.
    """
    parts = urlsplit(location_url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise WsdlError(f"WSDL location must be an absolute http(s) URL, got {location_url!r}")
    if any(ch.isspace() or ord(ch) < 0x20 for ch in location_url):
        raise WsdlError("WSDL location must not contain spaces or control characters")
    root = etree.fromstring(load_wsdl())
    addresses = root.findall(f".//{{{_WSDL_SOAP_NAMESPACE}}}address")
    if not addresses:
        raise WsdlError("the shipped WSDL has no soap:address to rewrite")
    for address in addresses:
        address.set("location", location_url)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")

"""The address the 504 WSDL gives: ``[server] public_url``'s scheme and host
with the 504 path, or (unset) the one made from the request, as for v2.3."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

from concentrador.config.model import ServerConfig

__all__ = ["public_url_504"]


def public_url_504(server: ServerConfig) -> str | None:
    """``public_url`` with its path replaced by ``iec62325_path`` (None when unset)."""
    if not server.public_url:
        return None
    parts = urlsplit(server.public_url)
    return urlunsplit((parts.scheme, parts.netloc, server.iec62325_path, "", ""))

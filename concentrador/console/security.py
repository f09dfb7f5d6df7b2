"""Who may use the console, who they are, and forms that only our pages can post.

* Authentication (``[admin]``): on loopback with neither a token nor mutual
  TLS, whoever can reach the port (the machine's users) may use it; with a
  ``token``, every request but ``/healthz`` must carry
  ``Authorization: Bearer <token>``; with mutual TLS, the TLS handshake has
  already required a client certificate from ``client_ca``.
* The identity recorded as the actor of an action: the certificate's
  subject, else ``token``, else ``local``, with the caller's address.
* CSRF: a browser on the operator's desk could be made to post to a
  loopback console by any web page. Every form carries a per-process random
  token that another origin cannot read, and a POST without it is refused.
"""

from __future__ import annotations

import hmac
import secrets
import ssl
from collections.abc import Awaitable, Callable

from aiohttp import web
from aiohttp.typedefs import Middleware

from concentrador.config.model import AdminConfig

__all__ = ["CSRF_FIELD", "CsrfGuard", "actor_of", "auth_middleware"]

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

CSRF_FIELD = "csrf"
# Liveness must be checkable by a plain probe with no secret; it says nothing.
_OPEN_PATHS = frozenset({"/healthz"})


def auth_middleware(admin: Callable[[], AdminConfig]) -> Middleware:
    """Refuse requests without the configured bearer token (``admin()``: the current config)."""

    @web.middleware
    async def check(request: web.Request, handler: Handler) -> web.StreamResponse:
        token = admin().token
        if token is not None and request.path not in _OPEN_PATHS:
            scheme, _, given = request.headers.get("Authorization", "").partition(" ")
            if scheme.lower() != "bearer" or not hmac.compare_digest(
                given.strip().encode(), token.encode()
            ):
                raise web.HTTPUnauthorized(
                    text="the console needs Authorization: Bearer <admin.token>\n",
                    headers={"WWW-Authenticate": 'Bearer realm="concentrador"'},
                )
        return await handler(request)

    return check


def _certificate_subject(request: web.BaseRequest) -> str | None:
    ssl_object = request.transport.get_extra_info("ssl_object") if request.transport else None
    if not isinstance(ssl_object, ssl.SSLObject | ssl.SSLSocket):
        return None
    cert = ssl_object.getpeercert()
    if not cert:
        return None
    # getpeercert()'s subject: a tuple of RDNs, each a tuple of (key, value) pairs.
    parts = [f"{pair[0]}={pair[1]}" for rdn in cert.get("subject", ()) for pair in rdn]
    return ",".join(reversed(parts)) or None


def actor_of(request: web.BaseRequest, admin: AdminConfig) -> str:
    """Who acts, for the audit trail: ``admin:<identity>@<address>``."""
    identity = _certificate_subject(request)
    if identity is None:
        identity = "token" if admin.token is not None else "local"
    return f"admin:{identity}@{request.remote or '?'}"


class CsrfGuard:
    """One random token per process, put in every form and checked on every POST."""

    def __init__(self, token: str | None = None) -> None:
        self.token = token or secrets.token_urlsafe(32)

    def check(self, form_value: object) -> None:
        if not isinstance(form_value, str) or not hmac.compare_digest(
            form_value.encode(), self.token.encode()
        ):
            raise web.HTTPForbidden(
                text="refused: the form did not come from this console (CSRF check)\n"
            )

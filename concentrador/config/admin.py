"""``[admin]``: where the operator console listens, and who may use it.

Local only by default (``127.0.0.1:9180``). Bound anywhere else it must
authenticate its users, by a bearer ``token``, by client certificates
(``cert`` + ``key`` + ``client_ca``: mutual TLS), or both: a console that
can re-publish files and retry pushes is never left open on a network.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from concentrador.config.checks import Checker, parse_listen
from concentrador.config.model import AdminConfig

__all__ = ["ADMIN_KEYS", "MIN_TOKEN_LENGTH", "is_loopback", "read_admin"]

ADMIN_KEYS = ("listen", "token", "cert", "key", "client_ca")
MIN_TOKEN_LENGTH = 16
"""A bearer token shorter than this is refused: it would be guessable."""


def is_loopback(host: str) -> bool:
    """Whether ``host`` only ever reaches this machine (``localhost`` or a loopback IP)."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # any other name may resolve to a public address


def read_admin(checker: Checker, raw: object) -> AdminConfig | None:
    """The ``[admin]`` table (absent: the defaults); None after a problem."""
    table: dict[str, Any] | None = checker.table(raw, "admin", ADMIN_KEYS)
    if table is None:
        return None
    default = AdminConfig()
    listen = checker.string(table, "listen", "admin", f"{default.host}:{default.port}")
    token = checker.string(table, "token", "admin", None)
    cert = checker.path(table, "cert", "admin", None)
    key = checker.path(table, "key", "admin", None)
    client_ca = checker.path(table, "client_ca", "admin", None)
    if listen is None:
        return None
    try:
        host, port = parse_listen(listen)
    except ValueError as exc:
        checker.problem("admin.listen", str(exc))
        return None
    problems = len(checker.problems)
    if token is not None and len(token.strip()) < MIN_TOKEN_LENGTH:
        checker.problem("admin.token", f"too short: use at least {MIN_TOKEN_LENGTH} characters")
    tls = (cert, key, client_ca)
    if any(value is not None for value in tls) and None in tls:
        checker.problem(
            "admin", "cert, key and client_ca go together (mutual TLS): set all three or none"
        )
    if not is_loopback(host) and token is None and client_ca is None:
        checker.problem(
            "admin.listen",
            f"{listen!r} is not a loopback address and the console has no authentication: "
            "set admin.token or admin.cert/key/client_ca (mutual TLS), or listen on 127.0.0.1",
        )
    if len(checker.problems) > problems:
        return None
    return AdminConfig(host, port, token, cert, key, client_ca)

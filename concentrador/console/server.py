"""The console's own listener: one more aiohttp site in the daemon's process.

Its own :class:`~aiohttp.web.AppRunner` over the console app, never the
CPCSCC one: the two share the event loop, nothing else. With
``[admin] cert/key/client_ca`` it serves HTTPS and requires a client
certificate from ``client_ca``; the config loader has already refused a
non-loopback address with neither that nor a token.
"""

from __future__ import annotations

import os
import ssl

from aiohttp import web

from concentrador.config.model import AdminConfig
from concentrador.console.app import build_admin_app
from concentrador.console.node import ConsoleNode

__all__ = ["AdminServer", "AdminStartError", "admin_tls_context"]


class AdminStartError(Exception):
    """The console cannot listen; the message is one line for the operator."""


def admin_tls_context(admin: AdminConfig) -> ssl.SSLContext | None:
    if admin.cert is None or admin.key is None or admin.client_ca is None:
        return None
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.verify_mode = ssl.CERT_REQUIRED
    try:
        context.load_cert_chain(str(admin.cert), str(admin.key))
        context.load_verify_locations(cafile=str(admin.client_ca))
    except (OSError, ssl.SSLError) as exc:
        raise AdminStartError(
            f"admin TLS material ({admin.cert}, {admin.client_ca}): {exc}"
        ) from None
    return context


class AdminServer:
    """Serves the console for ``node`` on ``node.config.admin``'s address until :meth:`stop`."""

    def __init__(self, node: ConsoleNode, *, shutdown_timeout: float = 5.0) -> None:
        self.node = node
        self.app = build_admin_app(node)
        self._runner = web.AppRunner(
            self.app, handle_signals=False, shutdown_timeout=shutdown_timeout, access_log=None
        )
        self.tls = False

    @property
    def urls(self) -> list[str]:
        scheme = "https" if self.tls else "http"
        urls = []
        for address in self._runner.addresses:
            host, port = str(address[0]), int(address[1])
            urls.append(f"{scheme}://{f'[{host}]' if ':' in host else host}:{port}/")
        return urls

    async def start(self) -> None:
        admin = self.node.config.admin
        context = admin_tls_context(admin)
        self.tls = context is not None
        await self._runner.setup()
        site = web.TCPSite(self._runner, admin.host, admin.port, ssl_context=context)
        try:
            await site.start()
        except OSError as exc:
            await self._runner.cleanup()
            reason = os.strerror(exc.errno) if exc.errno else str(exc)
            raise AdminStartError(
                f"the console cannot listen on {admin.listen}: {reason}"
            ) from None
        self.node.admin_listeners = self.urls

    async def stop(self) -> None:
        await self._runner.cleanup()

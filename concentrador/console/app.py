"""The console application: pages, ``/metrics``, ``/healthz``, ``/readyz``.

A separate :class:`aiohttp.web.Application` from the CPCSCC one, served on
its own listener (:class:`~concentrador.console.server.AdminServer`): no
route of it exists on the CPCSCC port, and none of the CPCSCC app here.
"""

from __future__ import annotations

import asyncio
from importlib import resources

import aiohttp_jinja2
import jinja2
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from concentrador.console.collector import StatusCollector
from concentrador.console.health import readiness
from concentrador.console.node import ConsoleNode
from concentrador.console.overview import build_overview
from concentrador.console.security import CsrfGuard, auth_middleware
from concentrador.console.templating import FILTERS
from concentrador.console.views import CSRF_KEY, NODE_KEY, add_page_routes
from concentrador.telemetry.metrics import REGISTRY

__all__ = ["build_admin_app"]

_GAUGES_KEY = web.AppKey("console_gauges", CollectorRegistry)


def build_admin_app(node: ConsoleNode, *, csrf: CsrfGuard | None = None) -> web.Application:
    # Forms are small; nothing here takes an upload.
    app = web.Application(client_max_size=64 * 1024)
    app[NODE_KEY] = node
    app[CSRF_KEY] = csrf or CsrfGuard()
    gauges = CollectorRegistry(auto_describe=False)
    gauges.register(StatusCollector(lambda: build_overview(node)))
    app[_GAUGES_KEY] = gauges
    app.middlewares.append(auth_middleware(lambda: node.config.admin))
    package = resources.files("concentrador.console")
    aiohttp_jinja2.setup(
        app,
        loader=jinja2.PackageLoader("concentrador.console", "templates"),
        filters=FILTERS,
        undefined=jinja2.StrictUndefined,
    )
    add_page_routes(app)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics)
    app.router.add_static("/static", str(package / "static"), name="static")
    return app


async def healthz(_request: web.Request) -> web.Response:
    """Alive: the event loop answers. Nothing else is checked (that is ``/readyz``)."""
    return web.Response(text="ok\n")


async def readyz(request: web.Request) -> web.Response:
    checks = await asyncio.to_thread(readiness, request.app[NODE_KEY])
    lines = [f"{'ok' if c.ok else 'FAIL'} {c.name}: {c.detail}" for c in checks]
    ready = all(c.ok for c in checks)
    return web.Response(status=200 if ready else 503, text="\n".join(lines) + "\n")


def _exposition(gauges: CollectorRegistry) -> bytes:
    # Two registries, one page: the process's counters, then the scrape-time gauges.
    return generate_latest(REGISTRY) + generate_latest(gauges)


async def metrics(request: web.Request) -> web.Response:
    body = await asyncio.to_thread(_exposition, request.app[_GAUGES_KEY])
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

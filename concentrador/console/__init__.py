"""The operator console: a small admin web app beside the CPCSCC server.

Server-rendered pages (Jinja2 through aiohttp-jinja2, a few lines of plain
JS to refresh), ``/metrics`` for Prometheus, ``/healthz`` and ``/readyz``.
It runs in the daemon's process, on its own listener (``[admin] listen``),
never on the CPCSCC port: :func:`build_admin_app` is a separate aiohttp
application that the daemon serves with :class:`AdminServer`.

Above ``server`` and ``client`` and below ``daemon`` in the layering: it
reads the spool, the ledger and the status model, and acts through
``spool/actions.py``; what only the daemon knows (its listeners, how to
trigger a push) it receives in a :class:`ConsoleNode`.
"""

from concentrador.console.app import build_admin_app
from concentrador.console.node import ConsoleNode
from concentrador.console.server import AdminServer, AdminStartError

__all__ = ["AdminServer", "AdminStartError", "ConsoleNode", "build_admin_app"]

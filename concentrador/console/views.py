"""The console's pages: status, the file search, a file's trail and its actions.

Every handler reads in a worker thread (SQLite and the file system block)
and renders a template; every action is a POST form, checked for the CSRF
token, done through ``spool/actions.py`` with the operator as the actor,
and answered with a redirect back to the file (so a reload does not repeat it).
"""

from __future__ import annotations

import asyncio
from datetime import date, datetime, time, timedelta
from typing import Any
from urllib.parse import urlencode

import aiohttp_jinja2
from aiohttp import web

from concentrador.console.node import ConsoleNode
from concentrador.console.overview import build_overview
from concentrador.console.security import CSRF_FIELD, CsrfGuard, actor_of
from concentrador.console.templating import file_link
from concentrador.spool.actions import ActionRefused, mark_reviewed, republish, retry_push
from concentrador.spool.layout import SpoolState
from concentrador.spool.ledger import FilePage, FileRow

__all__ = ["ACTIONS", "CSRF_KEY", "NODE_KEY", "add_page_routes"]

NODE_KEY = web.AppKey("console_node", ConsoleNode)
CSRF_KEY = web.AppKey("console_csrf", CsrfGuard)
PAGE_SIZE = 50
# What each action button does, and the past tense shown once done.
ACTIONS = {"retry": "retried", "republish": "republished", "review": "reviewed"}
STATES = [state.value for state in SpoolState if state is not SpoolState.ARCHIVE]


def _node(request: web.Request) -> ConsoleNode:
    return request.app[NODE_KEY]


def _base(request: web.Request, **context: Any) -> dict[str, Any]:
    node = _node(request)
    base = {"node_id": node.config.node.id, "csrf": request.app[CSRF_KEY].token, "refresh": False}
    return {**base, **context}


async def status_page(request: web.Request) -> web.Response:
    overview = await asyncio.to_thread(build_overview, _node(request))
    return aiohttp_jinja2.render_template(
        "status.html", request, _base(request, overview=overview, refresh=True)
    )


def _day(text: str | None, node: ConsoleNode, *, end: bool = False) -> datetime | None:
    """``YYYY-MM-DD`` in the node's time zone; ``end`` is the next midnight (inclusive day)."""
    if not text:
        return None
    try:
        day = date.fromisoformat(text)
    except ValueError:
        raise web.HTTPBadRequest(text=f"not a date (YYYY-MM-DD): {text!r}\n") from None
    if end:
        day += timedelta(days=1)
    return datetime.combine(day, time(), tzinfo=node.config.node.timezone)


async def files_page(request: web.Request) -> web.Response:
    node, query = _node(request), request.query
    filters = {
        key: query.get(key, "").strip() for key in ("peer", "type", "state", "since", "until", "q")
    }
    try:
        page = max(int(query.get("page", "1")), 1)
    except ValueError:
        page = 1
    found: FilePage = await asyncio.to_thread(
        node.ledger.search_files,
        peer=filters["peer"] or None,
        file_type=filters["type"] or None,
        state=filters["state"] or None,
        since=_day(filters["since"], node),
        until=_day(filters["until"], node, end=True),
        text=filters["q"] or None,
        offset=(page - 1) * PAGE_SIZE,
        limit=PAGE_SIZE,
    )
    pages = max((found.total + PAGE_SIZE - 1) // PAGE_SIZE, 1)
    kept = {key: value for key, value in filters.items() if value}
    return aiohttp_jinja2.render_template(
        "files.html",
        request,
        _base(
            request,
            found=found,
            filters=filters,
            page=page,
            pages=pages,
            peers=[peer.id for peer in node.config.peers],
            states=STATES,
            previous=urlencode({**kept, "page": page - 1}) if page > 1 else None,
            next=urlencode({**kept, "page": page + 1}) if page < pages else None,
        ),
    )


def _find(node: ConsoleNode, peer: str, name: str) -> FileRow | None:
    page = node.ledger.search_files(peer=peer, text=name, limit=1000)
    return next((row for row in page.rows if row.name == name), None)


async def file_page(request: web.Request) -> web.Response:
    peer, name = request.query.get("peer", ""), request.query.get("name", "")
    if not peer or not name:
        raise web.HTTPBadRequest(text="a file is named by ?peer=...&name=...\n")
    return await _render_file(request, peer, name, done=request.query.get("done"))


async def _render_file(
    request: web.Request, peer: str, name: str, *, done: str | None = None, error: str | None = None
) -> web.Response:
    node = _node(request)
    row = await asyncio.to_thread(_find, node, peer, name)
    trail = await asyncio.to_thread(node.ledger.events_for, peer, name)
    if row is None and not trail:
        raise web.HTTPNotFound(text=f"no file {name!r} is known for {peer!r}\n")
    context = _base(
        request,
        peer=peer,
        name=name,
        row=row,
        trail=trail,
        done=done,
        error=error,
        may_retry=row is not None and row.state == SpoolState.FAILED.value,
        may_republish=row is not None and row.state == SpoolState.EXPIRED.value,
    )
    response = aiohttp_jinja2.render_template("file.html", request, context)
    if error is not None:
        response.set_status(409)
    return response


async def file_action(request: web.Request) -> web.StreamResponse:
    node = _node(request)
    form = await request.post()
    request.app[CSRF_KEY].check(form.get(CSRF_FIELD))
    peer, name, action = (str(form.get(key, "")) for key in ("peer", "name", "action"))
    reason = str(form.get("reason", "")).strip()[:500]
    if action not in ACTIONS or not peer or not name:
        raise web.HTTPBadRequest(text="unknown action or file\n")
    if node.config.peer_by_id(peer) is None:
        raise web.HTTPBadRequest(text=f"{peer!r} is not a configured peer\n")
    actor = actor_of(request, node.config.admin)
    do = {"retry": retry_push, "republish": republish, "review": mark_reviewed}[action]
    try:
        await asyncio.to_thread(
            do,
            node.spool,
            node.ledger,
            peer,
            name,
            actor=actor,
            reason=reason or f"{action} from the console",
        )
    except ActionRefused as exc:
        return await _render_file(request, peer, name, error=str(exc))
    if action == "retry":
        node.request_push(peer)
    raise web.HTTPSeeOther(file_link(peer, name) + "&" + urlencode({"done": ACTIONS[action]}))


def add_page_routes(app: web.Application) -> None:
    app.router.add_get("/", status_page, name="status")
    app.router.add_get("/files", files_page, name="files")
    app.router.add_get("/file", file_page, name="file")
    app.router.add_post("/file/action", file_action, name="file-action")

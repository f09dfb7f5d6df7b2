"""The console's pages, actions, health checks and metrics, in-process (aiohttp test client)."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from prometheus_client.parser import text_string_to_metric_families

from concentrador.console import ConsoleNode, build_admin_app
from concentrador.console.security import CsrfGuard
from concentrador.spool.layout import SpoolState
from concentrador.spool.ledger import EventKind
from tests.console.conftest import NOW, publish

NAME = "F1_0086_20240101_20240102.0.bz2"
TOKEN = "a-token-long-enough-1234"

ClientMaker = Callable[..., "TestClient"]


@pytest.fixture
async def console(
    aiohttp_client: Callable[..., object], make_node: Callable[..., ConsoleNode]
) -> Callable[..., object]:
    async def start(node: ConsoleNode | None = None) -> tuple[TestClient, ConsoleNode]:
        node = node or make_node()
        app = build_admin_app(node, csrf=CsrfGuard("the-csrf-token"))
        return await aiohttp_client(app), node  # type: ignore[operator]

    return start


async def test_the_status_page_shows_peers_the_node_and_loud_warnings(console) -> None:
    client, node = await console()
    node.ledger.set_status("CREC", "clock_offset_seconds", "+45")
    node.ledger.set_status("CREC", "last_push_result", "failed: connection refused")
    node.ledger.set_status("CREC", "push_failures_in_a_row", "3")
    failed = node.spool.peer("CREC").dir(SpoolState.FAILED)
    (failed / NAME).write_bytes(b"x")
    (failed / (NAME + ".reason")).write_text("push of it failed: code 3\n")
    response = await client.get("/")
    assert response.status == 200
    page = await response.text()
    warnings = page.split('id="warnings"')[1].split("</section>")[0]
    assert "clock offset +45 s" in warnings
    assert "last 3 push cycles failed (latest: failed: connection refused)" in warnings
    assert "cpcscc-2.3" in page and 'id="peer-OTRO"' in page
    assert "push of it failed: code 3" in page  # the failed file's reason
    assert "CN=localhost" in page  # the server certificate's subject
    assert "http://127.0.0.1:8443/" in page and "2 h 0 min" not in page  # listeners; uptime
    assert re.search(r"up since</dt><dd>2024-03-01 10:00:00 UTC", page)


async def test_files_are_searched_and_paged_on_the_server(console) -> None:
    client, node = await console()
    for day in range(60):
        publish(node.ledger, "CREC", f"F1_0086_{day:03d}.bz2", at=NOW - timedelta(days=day))
    publish(node.ledger, "OTRO", "F5_0086_X.bz2")
    page = await (await client.get("/files")).text()
    assert "61 files; page 1 of 2" in page
    assert page.count("<tr><td>") == 50 and 'rel="next"' in page
    page = await (await client.get("/files?peer=CREC&page=2")).text()
    assert "60 files; page 2 of 2" in page and page.count("<tr><td>") == 10
    page = await (await client.get("/files?since=2024-02-28&until=2024-03-01&q=F1_")).text()
    assert "3 files" in page  # days 0, 1 and 2 (the until day is included)
    assert (await client.get("/files?since=yesterday")).status == 400


async def test_a_files_trail_in_order_and_mark_as_reviewed(console) -> None:
    client, node = await console()
    publish(node.ledger, "CREC", NAME)
    page = await (await client.get("/file", params={"peer": "CREC", "name": NAME})).text()
    kinds = re.findall(r'data-kind="([a-z_]+)"', page)
    assert kinds == ["dropped", "compressed", "published"]
    assert 'id="retry"' not in page and 'id="review"' in page
    form = {"csrf": "the-csrf-token", "peer": "CREC", "name": NAME, "action": "review"}
    response = await client.post("/file/action", data={**form, "reason": "checked by phone"})
    assert response.status == 200 and str(response.url).endswith("done=reviewed")
    [event] = [e for e in node.ledger.events_for("CREC", NAME) if e.kind == EventKind.REVIEWED]
    assert event.actor == "admin:local@127.0.0.1" and event.detail == "checked by phone"
    assert (await client.get("/file", params={"peer": "CREC", "name": "nope"})).status == 404


async def test_actions_need_the_forms_csrf_token_and_say_why_they_are_refused(console) -> None:
    client, node = await console()
    publish(node.ledger, "CREC", NAME)
    form = {"peer": "CREC", "name": NAME, "action": "republish"}
    assert (await client.post("/file/action", data=form)).status == 403
    assert (await client.post("/file/action", data={**form, "csrf": "guess"})).status == 403
    response = await client.post("/file/action", data={**form, "csrf": "the-csrf-token"})
    assert response.status == 409
    assert "Refused: " in await response.text() and "not expired" in await response.text()


async def test_retry_moves_a_failed_push_back_and_asks_for_a_push(console, make_node) -> None:
    pushes: list[str] = []
    client, node = await console(make_node(request_push=pushes.append))
    publish(node.ledger, "CREC", NAME)
    node.ledger.set_state("CREC", NAME, SpoolState.FAILED.value, detail="code 3")
    peer = node.spool.peer("CREC")
    (peer.dir(SpoolState.FAILED) / NAME).write_bytes(b"x")
    (peer.dir(SpoolState.FAILED) / (NAME + ".reason")).write_text("push of it failed\n")
    page = await (await client.get("/file", params={"peer": "CREC", "name": NAME})).text()
    assert 'id="retry"' in page
    form = {"csrf": "the-csrf-token", "peer": "CREC", "name": NAME, "action": "retry"}
    response = await client.post("/file/action", data=form)
    assert response.status == 200 and pushes == ["CREC"]
    assert (peer.dir(SpoolState.SENDING) / NAME).exists()
    assert node.ledger.events_for("CREC", NAME)[-1].kind == EventKind.RETRIED


async def test_a_token_is_required_when_configured_but_not_for_healthz(console, make_node) -> None:
    client, _ = await console(make_node({"token": TOKEN}))
    assert (await client.get("/healthz")).status == 200
    for path in ("/", "/files", "/metrics", "/readyz"):
        response = await client.get(path)
        assert response.status == 401 and response.headers["WWW-Authenticate"].startswith("Bearer")
    assert (await client.get("/", headers={"Authorization": "Bearer wrong"})).status == 401
    assert (await client.get("/", headers={"Authorization": f"Bearer {TOKEN}"})).status == 200


async def test_readiness_says_what_is_wrong(console, make_node) -> None:
    listening: list[str] = []
    client, _ = await console(make_node(listeners=lambda: list(listening)))
    response = await client.get("/readyz")
    text = await response.text()
    assert response.status == 503 and "FAIL listening" in text
    assert "ok ledger" in text and "ok spool" in text and "ok certificates" in text
    listening.append("https://127.0.0.1:8443/")
    assert (await client.get("/readyz")).status == 200


async def test_metrics_parse_and_carry_the_status_gauges(console) -> None:
    client, node = await console()
    (node.spool.peer("OTRO").dir(SpoolState.INBOX) / "F5_X.bz2").write_bytes(b"x")
    node.ledger.set_status("CREC", "clock_offset_seconds", "-3")
    node.ledger.set_status("CREC", "last_push_ok_at", "2024-03-01T11:00:00+00:00")
    response = await client.get("/metrics")
    assert response.status == 200 and response.content_type == "text/plain"
    families = {f.name: f for f in text_string_to_metric_families(await response.text())}
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in families.values()
        for s in family.samples
    }
    assert samples[("concentrador_spool_files", (("peer", "OTRO"), ("state", "inbox")))] == 1
    assert samples[("concentrador_peer_clock_offset_seconds", (("peer", "CREC"),))] == -3
    key = (
        "concentrador_last_successful_cycle_timestamp_seconds",
        (("kind", "push"), ("peer", "CREC")),
    )
    assert samples[key] == NOW.timestamp() - 3600
    assert "concentrador_crl_next_update_timestamp_seconds" in families
    roles = {
        s.labels["role"]
        for s in families["concentrador_certificate_expiry_timestamp_seconds"].samples
    }
    assert "server" in roles and "client" in roles
    # The process's counters are there too (defined even before any request).
    assert (
        "concentrador_requests" in families
        and "concentrador_client_cycle_duration_seconds" in families
    )


async def test_the_cpcscc_app_has_no_console_routes(make_node) -> None:
    from aiohttp.test_utils import TestClient as Client
    from aiohttp.test_utils import TestServer

    from concentrador.server.app import build_app
    from concentrador.server.state import ServerState

    node = make_node()
    app: web.Application = build_app(ServerState(node.config, node.spool, node.ledger))
    async with Client(TestServer(app)) as client:
        for path in ("/", "/metrics", "/healthz", "/readyz", "/files", "/static/console.css"):
            response = await client.get(path)
            assert response.status == 404, path
            assert "concentrador_" not in await response.text()

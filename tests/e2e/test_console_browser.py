"""The operator console in a real browser, over the two-node demo's real daemons.

Headless Chromium (Debian's ``chromium``, driven by Playwright for Python;
``playwright install`` is never run) loads each node's console after a real
collection between the two ``concentrador serve`` processes, reads a file's
audit trail, presses "retry" on a push that failed and sees it delivered.
Screenshots go to ``tests/artifacts/`` (git-ignored; CI keeps it).
``/metrics`` is parsed with ``prometheus_client.parser`` and its counters
must match what the test did.
"""

from __future__ import annotations

import re
import signal
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.demo_nodes import Demo, Node, make_demo

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
NEVER_DURING_THE_TEST = "0 0 1 1 *"
COLLECTED = "F1_0086_20240101_20240102.0"
PUSHED = "P1_CREC_20240101_20240131.0"
# A refuses CREC's files until its config is fixed: enviarFichero codigo 3, escalated at once.
REFUSING = 'deliver = "publish"\nparticipants = ["ZZZZ"]'

sync_api = pytest.importorskip("playwright.sync_api")
pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium")


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[Demo]:
    demo = make_demo(tmp_path / "run", collect=NEVER_DURING_THE_TEST)
    config = demo.a.config.read_text()
    demo.a.config.write_text(config.replace('deliver = "publish"', REFUSING))
    demo.start()
    yield demo
    for node in demo.nodes:
        node.kill()


@pytest.fixture
def page(tmp_path: Path) -> Iterator[object]:
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch_persistent_context(
            str(tmp_path / "chromium-profile"),  # a fresh user-data-dir
            executable_path=str(CHROMIUM),
            headless=True,
            args=[
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
            ],
        )
        try:
            yield browser.new_page()
        finally:
            browser.close()


def metric_values(node: Node) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    with urllib.request.urlopen(f"{node.console}/metrics", timeout=10) as response:
        text = response.read().decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def requests_of(values: dict, operation: str, peer: str, result: str = "ok") -> float:
    labels = (("operation", operation), ("peer", peer), ("result", result))
    return values.get(("concentrador_requests_total", labels), 0.0)


def trail_kinds(page: object) -> list[str]:
    return page.eval_on_selector_all("#trail tr.event", "rows => rows.map(r => r.dataset.kind)")


def screenshot(page: object, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def test_consoles_after_a_real_collection_and_a_retried_push(demo: Demo, page: object) -> None:
    a, b = demo.a, demo.b
    # 1. A publishes a file for B; B collects it (the one-shot, as the README does).
    (a.folder("outbox") / COLLECTED).write_bytes(b"CUPS;20240101;1;2;3\n")
    demo.wait_for("A to publish", lambda: bool(a.names("published")), 30)
    done = b.cli("collect", "0086")
    assert done.returncode == 0, done.stdout + done.stderr + demo.diagnostics()
    demo.wait_for("A to see it confirmed", lambda: bool(a.names("delivered")), 30)

    # 2. A's status page, then the file's page with its trail in order.
    page.goto(f"{a.console}/")
    assert page.title().startswith("Status")
    assert page.inner_text("#peer-CREC").count("cpcscc-2.3") == 1
    assert "CN=localhost" in page.inner_text("#node")
    screenshot(page, "node-a-status")
    page.goto(f"{a.console}/files?peer=CREC")
    page.click(f"text={COLLECTED}.bz2")
    assert page.inner_text("#state") == "delivered"
    kinds = trail_kinds(page)
    expected = ["dropped", "compressed", "published", "listed", "fetched", "delivered"]
    assert [k for k in kinds if k in expected] == expected, kinds
    screenshot(page, "node-a-file")

    # 3. A's counters match what B did: one listing, one fetch, one confirmation.
    values = metric_values(a)
    assert requests_of(values, "informacionDisponible", "CREC") == 1
    assert requests_of(values, "recogerFichero", "CREC") == 1
    assert requests_of(values, "confirmacionRecepcionFichero", "CREC") == 1
    assert values[("concentrador_server_bytes_total", (("direction", "out"), ("peer", "CREC")))] > 0

    # 4. B pushes a file; A refuses it (codigo 3): escalated to B's failed/.
    (b.folder("outbox") / PUSHED).write_bytes(b"P1;CREC;20240101\n" * 10)
    demo.wait_for(
        "B's push to fail", lambda: any(n.endswith(".reason") for n in b.names("failed")), 60
    )
    assert requests_of(metric_values(a), "enviarFichero", "CREC", "3") == 1
    page.goto(f"{b.console}/")
    assert "codigo 3" in page.inner_text("#peer-0086")  # its failed file, with the reason
    screenshot(page, "node-b-status-failed-push")

    # 5. The operator fixes A's config (SIGHUP), then presses "retry" on B's console.
    fixed = a.config.read_text().replace(REFUSING, 'deliver = "publish"')
    a.config.write_text(fixed)
    a.process.send_signal(signal.SIGHUP)
    demo.wait_for("A to reload", lambda: "configuration reloaded" in a.log_text(), 30)
    page.goto(f"{b.console}/files?state=failed")
    page.click(f"text={PUSHED}.bz2")
    page.fill("input[name=reason]", "A's participants fixed")
    page.click("#retry")
    assert "Done: retried" in page.inner_text("#done")

    def delivered() -> bool:
        page.reload()
        return page.inner_text("#state") == "delivered"

    demo.wait_for("the retried push to be delivered", delivered, 60)
    kinds = trail_kinds(page)
    assert kinds.index("failed") < kinds.index("retried") < kinds.index("delivered"), kinds
    retried = page.inner_text("#trail tr[data-kind=retried]")
    assert "A's participants fixed" in retried and re.search(r"admin:local@127\.0\.0\.1", retried)
    screenshot(page, "node-b-file-retried")
    assert requests_of(metric_values(a), "enviarFichero", "CREC", "0") == 1
    assert [n for n in a.names("inbox") if n.startswith(PUSHED)]
    for node in demo.nodes:
        assert node.terminate() == 0, demo.diagnostics()


def test_the_console_is_not_on_the_cpcscc_port(demo: Demo) -> None:
    import ssl

    context = ssl.create_default_context(cafile=str(demo.a.certs / "ca.pem"))
    context.load_cert_chain(demo.a.certs / "CREC-client.pem", demo.a.certs / "CREC-client.key")
    for path in ("/metrics", "/healthz", "/files", "/"):
        request = urllib.request.Request(f"https://localhost:{demo.a.port}{path}")
        with pytest.raises(urllib.error.HTTPError) as info:
            urllib.request.urlopen(request, context=context, timeout=10)
        assert info.value.code == 404, path
    with urllib.request.urlopen(f"{demo.a.console}/healthz", timeout=10) as response:
        assert response.status == 200
    with urllib.request.urlopen(f"{demo.a.console}/readyz", timeout=10) as response:
        assert response.status == 200 and b"FAIL" not in response.read()


def test_serve_refuses_a_public_console_without_auth(tmp_path: Path) -> None:
    demo = make_demo(tmp_path / "run", collect=NEVER_DURING_THE_TEST)
    config = demo.a.config.read_text()
    demo.a.config.write_text(re.sub(r'(\[admin\]\nlisten = )"[^"]+"', r'\1"0.0.0.0:9180"', config))
    done = demo.a.cli("serve")
    assert done.returncode != 0
    assert "admin.listen: '0.0.0.0:9180' is not a loopback address" in done.stderr

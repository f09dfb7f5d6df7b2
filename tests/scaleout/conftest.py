"""Fixtures for the scale-out tests: a real PostgreSQL and a real HAProxy (issue 12).

* ``postgres`` (session): one server for the whole session, stopped by PID at
  its end, whatever happened (``tests/scaleout/postgres.py``);
* ``pg_url`` (function): ``postgresql://...`` of a new, empty database for
  one test, dropped after it;
* ``haproxy`` (function): a factory, ``haproxy([port_a, port_b])`` starts a
  TCP-mode round-robin HAProxy in front of those ports; every one started is
  stopped by PID after the test (``tests/scaleout/haproxy.py``).

Without PostgreSQL/HAProxy installed these tests skip, except in CI (``CI``
set) or with ``CONCENTRADOR_REQUIRE_SCALEOUT=1``, where they fail.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest

from tests.scaleout.haproxy import HAProxy
from tests.scaleout.postgres import PostgresServer
from tests.scaleout.processes import REQUIRE_ENV, ToolMissing, required
from tests.scaleout.replicas import Cluster, build_cluster

StartHAProxy = Callable[..., HAProxy]


def _unavailable(exc: ToolMissing) -> None:
    if required():
        pytest.fail(f"scale-out tests required (CI or {REQUIRE_ENV}=1): {exc}")
    pytest.skip(str(exc))


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    try:
        server = PostgresServer()
    except ToolMissing as exc:
        _unavailable(exc)
        raise  # unreachable: skip/fail raise
    with server:  # starts it; stops it by PID at the end, whatever happened
        yield server


@pytest.fixture
def pg_url(postgres: PostgresServer, request: pytest.FixtureRequest) -> Iterator[str]:
    url = postgres.create_database(request.node.name)
    try:
        yield url
    finally:
        postgres.drop_database(url)


@pytest.fixture
def haproxy(tmp_path: Path) -> Iterator[StartHAProxy]:
    started: list[HAProxy] = []

    def start(backends: Sequence[int], *, health_check: bool = False) -> HAProxy:
        try:
            proxy = HAProxy(
                tmp_path / f"haproxy-{len(started)}", backends, health_check=health_check
            )
        except ToolMissing as exc:
            _unavailable(exc)
            raise
        started.append(proxy)
        return proxy.start()

    try:
        yield start
    finally:
        for proxy in started:
            proxy.stop()


@pytest.fixture
def cluster(tmp_path: Path, pg_url: str, haproxy: StartHAProxy) -> Iterator[Cluster]:
    """The replicated deployment of :func:`tests.scaleout.replicas.build_cluster`."""
    started = build_cluster(tmp_path, pg_url, haproxy)
    try:
        yield started
    finally:
        started.stop_all()

"""The scale-out fixtures themselves: a real PostgreSQL and a real HAProxy, stopped by PID."""

from __future__ import annotations

import hashlib
import os
import socket
import socketserver
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from concentrador.pki.devpki import init_dev_pki
from tests.scaleout.conftest import StartHAProxy
from tests.scaleout.postgres import PostgresServer
from tests.scaleout.processes import children_of, pid_alive

psycopg = pytest.importorskip("psycopg")


# -- PostgreSQL ---------------------------------------------------------------


def test_postgres_answers_and_runs_unprivileged(postgres: PostgresServer, pg_url: str) -> None:
    assert pg_url.startswith(f"postgresql://concentrador@127.0.0.1:{postgres.port}/")
    with psycopg.connect(pg_url) as connection:
        assert connection.execute("SELECT 1").fetchone() == (1,)
        (database,) = connection.execute("SELECT current_database()").fetchone()
    assert pg_url.endswith("/" + database)
    # PostgreSQL refuses root; the fixture must have dropped to another user.
    assert os.stat(f"/proc/{postgres.pid}").st_uid != 0


def test_two_connections_see_each_others_commits(pg_url: str) -> None:
    with psycopg.connect(pg_url) as a, psycopg.connect(pg_url, autocommit=True) as b:
        a.execute("CREATE TABLE claims (peer text PRIMARY KEY, replica text NOT NULL)")
        a.commit()
        a.execute("INSERT INTO claims VALUES ('CREC', 'replica-a')")
        # Not committed yet: b must not see it (read committed, a real server).
        assert b.execute("SELECT count(*) FROM claims").fetchone() == (0,)
        a.commit()
        assert b.execute("SELECT replica FROM claims").fetchall() == [("replica-a",)]
        b.execute("UPDATE claims SET replica = 'replica-b' WHERE peer = 'CREC'")
        assert a.execute("SELECT replica FROM claims").fetchall() == [("replica-b",)]
        a.commit()


@pytest.mark.parametrize("round_", [1, 2])
def test_each_test_gets_a_new_empty_database(pg_url: str, round_: int) -> None:
    # Twice the same table name: the second round only passes on a fresh database.
    with psycopg.connect(pg_url) as connection:
        tables = connection.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'"
        ).fetchone()
        assert tables == (0,)
        connection.execute("CREATE TABLE ledger_probe (n int)")


def test_server_is_stopped_by_pid_with_its_backends() -> None:
    """A server of its own (not the session's): stop() leaves no process and no folder."""
    server = PostgresServer().start()
    try:
        url = server.create_database("probe")
        connection = psycopg.connect(url)  # a backend that is still connected at stop()
        postmaster = server.pid
        family = [postmaster, *children_of(postmaster)]
        assert len(family) > 2  # the postmaster, its helpers, our backend
    finally:
        server.stop()
    assert not any(pid_alive(pid) for pid in family)
    assert not server.directory.exists()
    with pytest.raises(psycopg.OperationalError):
        connection.execute("SELECT 1")
    connection.close()


# -- HAProxy ------------------------------------------------------------------


class _TaggedEcho(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        line = self.request.makefile("rb").readline()
        self.request.sendall(self.server.tag + b":" + line)  # type: ignore[attr-defined]


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


@pytest.fixture
def backend() -> Iterator[Callable[..., int]]:
    """Start a tiny TCP backend on a free loopback port; returns its port."""
    servers: list[_Server] = []

    def start(tag: bytes, handler: type[socketserver.BaseRequestHandler] = _TaggedEcho) -> int:
        server = _Server(("127.0.0.1", 0), handler)
        server.tag = tag  # type: ignore[attr-defined]
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return int(server.server_address[1])

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def _ask(port: int, line: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as connection:
        connection.sendall(line + b"\n")
        return connection.makefile("rb").readline().rstrip(b"\n")


def test_haproxy_alternates_between_two_backends(
    haproxy: StartHAProxy, backend: Callable[..., int]
) -> None:
    proxy = haproxy([backend(b"A"), backend(b"B")])
    answers = [_ask(proxy.port, b"call-%d" % n) for n in range(6)]
    tags = [answer.split(b":")[0] for answer in answers]
    assert [answer.split(b":")[1] for answer in answers] == [b"call-%d" % n for n in range(6)]
    assert sorted(set(tags)) == [b"A", b"B"]
    assert all(tags[n] != tags[n + 1] for n in range(5)), tags  # round-robin


def test_haproxy_passes_mutual_tls_through(
    haproxy: StartHAProxy, backend: Callable[..., int], tmp_path: Path
) -> None:
    """TCP mode: the TLS session ends at the replica, which sees the peer's certificate."""
    pki = tmp_path / "pki"
    init_dev_pki(pki, peers=["CREC"])
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=pki / "ca.pem")
    server_context.verify_mode = ssl.CERT_REQUIRED
    server_context.load_cert_chain(pki / "server.pem", pki / "server.key")

    class _TlsReplica(socketserver.BaseRequestHandler):
        def handle(self) -> None:
            with server_context.wrap_socket(self.request, server_side=True) as tls:
                # The replica names the exact certificate it got: its fingerprint.
                der = tls.getpeercert(binary_form=True) or b""
                tls.sendall(hashlib.sha256(der).hexdigest().encode() + b"\n")

    proxy = haproxy([backend(b"tls", _TlsReplica)])
    client_context = ssl.create_default_context(cafile=pki / "ca.pem")
    client_context.load_cert_chain(pki / "CREC-client.pem", pki / "CREC-client.key")
    with (
        socket.create_connection(("127.0.0.1", proxy.port), timeout=5) as raw,
        client_context.wrap_socket(raw, server_hostname="localhost") as tls,
    ):
        seen_by_replica = tls.makefile("rb").readline().decode().strip()
        # And the replica's own certificate reached the client unchanged.
        served = tls.getpeercert(binary_form=True) or b""
    replica_certificate = x509.load_pem_x509_certificate((pki / "server.pem").read_bytes())
    assert served == replica_certificate.public_bytes(serialization.Encoding.DER)
    client_certificate = x509.load_pem_x509_certificate((pki / "CREC-client.pem").read_bytes())
    client_der = client_certificate.public_bytes(serialization.Encoding.DER)
    assert seen_by_replica == hashlib.sha256(client_der).hexdigest()


def test_haproxy_is_stopped_by_pid(haproxy: StartHAProxy, backend: Callable[..., int]) -> None:
    proxy = haproxy([backend(b"A")])
    pid, port = proxy.pid, proxy.port
    assert "replicas" in proxy.command("show stat")
    proxy.stop()
    assert not pid_alive(pid)
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=2).close()


def test_haproxy_with_health_checks_skips_a_dead_backend(
    haproxy: StartHAProxy, backend: Callable[..., int]
) -> None:
    """What the kill -9 tests rely on: a replica that stopped accepting gets no peers."""
    with socket.socket() as probe:  # a port nobody listens on: a killed replica
        probe.bind(("127.0.0.1", 0))
        dead = int(probe.getsockname()[1])
    proxy = haproxy([dead, backend(b"B")], health_check=True)
    deadline = time.monotonic() + 5
    while "DOWN" not in proxy.command("show stat"):  # the check marked it down
        assert time.monotonic() < deadline, proxy.command("show stat")
        time.sleep(0.1)
    assert [_ask(proxy.port, b"x%d" % n) for n in range(4)] == [b"B:x%d" % n for n in range(4)]

"""Fixtures for the interop tests: the Axis 1.4 toolchain, a dev PKI, live processes.

The "live" tests run the real programs as subprocesses: ``concentrador
serve`` (our daemon, as an operator starts it) and the Java Axis programs.
:func:`serve_concentrador` starts our daemon on a free loopback port and
waits until it accepts TLS connections; :func:`start_java_server` does the
same for a long-running Java server that prints ``ready=PORT``.
"""

from __future__ import annotations

import bz2
import contextlib
import hashlib
import os
import random
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

from concentrador.config import load_config
from concentrador.daemon.services import SpoolServices
from concentrador.pki.devpki import init_dev_pki
from tests.interop.axis import (
    REQUIRE_ENV,
    AxisToolchain,
    AxisUnavailable,
    build_toolchain,
    interop_required,
)

# The peers of the live tests' dev PKI. OTRO gets a valid certificate from
# the same CA but is never configured: the "unknown DN" case.
DEV_PEERS = ("CREC", "OTRO")
CONCENTRADOR_BIN = Path(sys.executable).with_name("concentrador")
STARTUP_TIMEOUT = 30.0
STOP_TIMEOUT = 15.0


def run_cli(config: Path, *args: str, timeout: float) -> subprocess.CompletedProcess[str]:
    """``concentrador --config CONFIG ARGS...`` as a real process, output captured."""
    return subprocess.run(
        [str(CONCENTRADOR_BIN), "--config", str(config), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture(scope="session")
def axis(tmp_path_factory: pytest.TempPathFactory) -> AxisToolchain:
    """The Java programs compiled once per session; skip (or fail in CI) without a JDK/Axis."""
    try:
        return build_toolchain(tmp_path_factory.mktemp("axis-classes"))
    except AxisUnavailable as exc:
        if interop_required():
            pytest.fail(f"Axis interop required ({REQUIRE_ENV}=1) but unavailable: {exc}")
        pytest.skip(f"Axis 1.4 interop unavailable: {exc}")


@pytest.fixture(scope="session")
def dev_pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``concentrador certs init`` output (PEM + PKCS12) for node 0086, CREC and OTRO."""
    directory = tmp_path_factory.mktemp("pki")
    init_dev_pki(directory, peers=list(DEV_PEERS))
    return directory


def po1011_text(rows: int, seed: int) -> bytes:
    """Hourly-curve-like P.O. 10.11 lines (``;``-separated), as real files look."""
    rng = random.Random(seed)
    return "".join(
        f"ES0031405{rng.randrange(10**9):09d}0F;11;2024/06/01 {h % 24:02d}:00;0;"
        f"{rng.randrange(5000)};0;0;{rng.randrange(900)};0;0;0;0;1\n"
        for h in range(rows)
    ).encode("ascii")


def incompressible_bzip2(size: int, seed: int) -> bytes:
    """A genuine bzip2 stream a little larger than ``size`` (random content)."""
    return bz2.compress(random.Random(seed).randbytes(size), compresslevel=1)


def md5_of(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def free_port() -> int:
    """A loopback port that was free a moment ago (the OS does not reuse it at once)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def tls_accepts(port: int, pki: Path, stem: str = "CREC-client") -> bool:
    """True once ``localhost:port`` completes a mutual-TLS handshake."""
    context = ssl.create_default_context(cafile=str(pki / "ca.pem"))
    context.load_cert_chain(str(pki / f"{stem}.pem"), str(pki / f"{stem}.key"))
    try:
        with (
            socket.create_connection(("localhost", port), timeout=2) as raw,
            context.wrap_socket(raw, server_hostname="localhost"),
        ):
            return True
    except (OSError, ssl.SSLError):
        return False


def publish_outbox_now(config_path: Path) -> None:
    """Run the daemon's start-up spool pass with no settle delay.

    Files dropped in ``<spool>/<PEER>/outbox/`` become published (compressed,
    split into blocks, ledgered) exactly as the daemon would do it, but
    deterministically and before the daemon starts, instead of waiting for
    the watcher's settle time.
    """
    services = SpoolServices(load_config(config_path), settle_seconds=0)
    try:
        services.startup_pass()
    finally:
        services.close()


@dataclass(frozen=True)
class LiveConcentrador:
    """Our daemon running as ``concentrador --config CONFIG serve``."""

    url: str
    port: int
    config_path: Path
    log_path: Path

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=STOP_TIMEOUT)


@contextlib.contextmanager
def serve_concentrador(config_path: Path, port: int, pki: Path) -> Iterator[LiveConcentrador]:
    """Start ``concentrador serve`` (config listening on ``port``); stop it with SIGTERM."""
    log_path = config_path.with_suffix(".log")
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [str(CONCENTRADOR_BIN), "--config", str(config_path), "serve"],
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "NOTIFY_SOCKET": ""},
        )
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while not tls_accepts(port, pki):
            if process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(
                    f"concentrador serve did not come up on port {port}:\n"
                    + log_path.read_text(errors="replace")[-4000:]
                )
            time.sleep(0.1)
        yield LiveConcentrador(f"https://localhost:{port}/", port, config_path, log_path)
    finally:
        _stop(process)


@dataclass(frozen=True)
class LiveJavaServer:
    """A Java server subprocess whose stdout (``key=value`` lines) is a log file."""

    port: int
    log_path: Path

    def events(self, key: str) -> list[str]:
        """Values of every ``key=value`` line logged so far, in order."""
        values = []
        for line in self.log_path.read_text(errors="replace").splitlines():
            name, sep, value = line.partition("=")
            if sep and name == key:
                values.append(value)
        return values


@contextlib.contextmanager
def start_java_server(
    axis: AxisToolchain,
    main_class: str,
    args: Sequence[str],
    *,
    jvm_options: Sequence[str],
    log_path: Path,
) -> Iterator[LiveJavaServer]:
    """Run a Java server until the block ends; it must print ``ready=PORT``."""
    command = axis.command(main_class, *args, jvm_options=jvm_options)
    with log_path.open("wb") as log, log_path.with_suffix(".err").open("wb") as err:
        process = subprocess.Popen(command, stdout=log, stderr=err)
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT
        server = LiveJavaServer(0, log_path)
        while not (ready := server.events("ready")):
            if process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(
                    f"{main_class} did not start:\n"
                    + log_path.with_suffix(".err").read_text(errors="replace")[-4000:]
                )
            time.sleep(0.1)
        yield LiveJavaServer(int(ready[0]), log_path)
    finally:
        _stop(process)

"""Fixtures: our independent Java IEC 62325-504 server and the JDK XMLDSig tools.

- ``eme_java`` (session): the Java sources compiled once (``EmeJava``: ``verify``,
  ``verify_outcome``, ``sign``, and ``toolchain`` to run other mains);
- ``iec62325_java_server``: a running ``EmeServer`` for peer CREC in ``tmp_path``
  (TLS ``server.p12``, responses signed with ``CREC-client.p12``, unsigned puts
  accepted); for other options use :func:`start_eme_java_server` directly.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.interop.axis import REQUIRE_ENV, AxisUnavailable, interop_required
from tests.interop.iec62325.eme_java import (
    EmeJava,
    EmeJavaServer,
    build_eme_java,
    start_eme_java_server,
)


@pytest.fixture(scope="session")
def eme_java(tmp_path_factory: pytest.TempPathFactory) -> EmeJava:
    """Our Java 504 server and tools, compiled once per session; skip (fail in CI) without them."""
    try:
        return build_eme_java(tmp_path_factory.mktemp("eme-java-classes"))
    except AxisUnavailable as exc:
        if interop_required():
            pytest.fail(f"JAX-WS interop required ({REQUIRE_ENV}=1) but unavailable: {exc}")
        pytest.skip(f"JAX-WS RI interop unavailable: {exc}")


@pytest.fixture
def iec62325_java_server(
    tmp_path: Path, dev_pki: Path, eme_java: EmeJava
) -> Iterator[EmeJavaServer]:
    """A live independent 504 server (peer CREC) on a free loopback port; stopped after."""
    with start_eme_java_server(eme_java, dev_pki, tmp_path / "eme-server") as server:
        yield server

"""Fixtures for the Apache Axis 1.4 interop tests."""

from __future__ import annotations

import pytest

from tests.interop.axis import (
    REQUIRE_ENV,
    AxisToolchain,
    AxisUnavailable,
    build_toolchain,
    interop_required,
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

"""``[ledger]``: SQLite in the spool by default; a PostgreSQL URL for replicas."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from concentrador.config import Config, ConfigError, LedgerConfig, build_config
from concentrador.config.render import render_config

BASE = {
    "node": {"id": "0086", "spool": "spool"},
    "server": {"listen": "127.0.0.1:8443", "insecure_http": True},
}
URL = "postgresql://concentrador:s3cret@db.example:5432/ledger"


def config_with(ledger: dict[str, object] | None, tmp_path: Path) -> Config:
    data: dict[str, object] = dict(BASE)
    if ledger is not None:
        data["ledger"] = ledger
    return build_config(data, tmp_path / "concentrador.toml")


def problems_of(ledger: dict[str, object], tmp_path: Path) -> list[str]:
    with pytest.raises(ConfigError) as info:
        config_with(ledger, tmp_path)
    return info.value.problems


def test_absent_or_empty_is_the_sqlite_default(tmp_path: Path) -> None:
    assert config_with(None, tmp_path).ledger == LedgerConfig(None, 10)
    assert config_with({}, tmp_path).ledger == LedgerConfig()
    assert "[ledger]" not in render_config(config_with(None, tmp_path))


@pytest.mark.skipif(importlib.util.find_spec("psycopg") is None, reason="psycopg not installed")
def test_a_postgresql_url_and_its_pool(tmp_path: Path) -> None:
    ledger = config_with({"url": URL, "pool_size": 4}, tmp_path).ledger
    assert (ledger.url, ledger.pool_size) == (URL, 4)
    assert "s3cret" not in repr(ledger)
    rendered = render_config(config_with({"url": URL}, tmp_path))
    assert '[ledger]\nurl = "postgresql://concentrador@db.example:5432/ledger"' in rendered
    assert "s3cret" not in rendered and "password is set in the config file" in rendered


@pytest.mark.parametrize(
    ("table", "expected"),
    [
        ({"url": "sqlite:///x.db"}, "ledger.url: expected a postgresql://"),
        ({"url": "mysql://u:hidden@h/db"}, "got scheme 'mysql'"),
        ({"url": 5}, "ledger.url"),
        ({"url": URL, "pool_size": 0}, "ledger.pool_size"),
        ({"pool_size": 3}, "ledger.pool_size: only used with ledger.url"),
        ({"path": "x"}, "ledger"),
    ],
)
def test_bad_tables_are_refused(table: dict[str, object], expected: str, tmp_path: Path) -> None:
    problems = problems_of(table, tmp_path)
    assert any(expected in p for p in problems), problems
    assert not any("hidden" in p or "s3cret" in p for p in problems)  # no password echoed


def test_without_psycopg_the_url_is_refused_with_the_fix(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "psycopg" else real(name)
    )
    (problem,) = problems_of({"url": URL}, tmp_path)
    assert "needs the psycopg module" in problem and "concentrador[postgresql]" in problem

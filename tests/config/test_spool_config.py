"""``[spool]`` (shared by replicas, or not) and ``[node] replica``."""

from __future__ import annotations

import importlib.util
import tomllib
from pathlib import Path

import pytest

from concentrador.config import Config, ConfigError, SpoolConfig, build_config
from concentrador.config.render import render_config

URL = "postgresql://concentrador@db.example:5432/ledger"
needs_psycopg = pytest.mark.skipif(
    importlib.util.find_spec("psycopg") is None, reason="psycopg not installed"
)


def build(tmp_path: Path, **tables: dict[str, object]) -> Config:
    data: dict[str, object] = {
        "node": {"id": "0086", "spool": "spool", **tables.pop("node", {})},
        "server": {"listen": "127.0.0.1:8443", "insecure_http": True},
        **tables,
    }
    return build_config(data, tmp_path / "concentrador.toml")


def problems(tmp_path: Path, **tables: dict[str, object]) -> list[str]:
    with pytest.raises(ConfigError) as info:
        build(tmp_path, **tables)
    return info.value.problems


def test_not_shared_by_default(tmp_path: Path) -> None:
    config = build(tmp_path)
    assert config.spool == SpoolConfig(shared=False, poll_interval=1.0)
    assert config.node.replica is None
    assert "[spool]" not in render_config(config)
    assert build(tmp_path, spool={}).spool == SpoolConfig()
    assert build(tmp_path, spool={"shared": False}).spool == SpoolConfig()


def test_a_shared_spool_needs_a_postgresql_ledger(tmp_path: Path) -> None:
    assert problems(tmp_path, spool={"shared": True}) == [
        "spool.shared: a shared spool needs the ledger in PostgreSQL: set [ledger] url = "
        '"postgresql://..." (SQLite\'s locking is not safe over NFS or CephFS)'
    ]


@needs_psycopg
def test_a_shared_spool_on_postgresql_round_trips(tmp_path: Path) -> None:
    config = build(
        tmp_path,
        node={"replica": "r1"},
        spool={"shared": True, "poll_interval": 2.5},
        ledger={"url": URL},
    )
    assert config.spool == SpoolConfig(shared=True, poll_interval=2.5)
    assert config.node.replica == "r1"
    text = render_config(config)
    assert "[spool]\nshared = true\npoll_interval = 2.5\n" in text
    assert 'replica = "r1"' in text
    reloaded = build_config(tomllib.loads(text), tmp_path / "concentrador.toml")
    assert (reloaded.spool, reloaded.node) == (config.spool, config.node)


@needs_psycopg
@pytest.mark.parametrize(
    ("value", "problem"),
    [
        (0, "spool.poll_interval: 0 must be more than 0 seconds"),
        (-1, "spool.poll_interval: -1 is out of range"),
        (float("nan"), "spool.poll_interval: nan is out of range"),
        (7200, "spool.poll_interval: 7200 is out of range"),
        ("1s", "spool.poll_interval: expected a number, got a string"),
    ],
)
def test_poll_interval_must_be_a_positive_number(
    tmp_path: Path, value: object, problem: str
) -> None:
    (found,) = problems(
        tmp_path, spool={"shared": True, "poll_interval": value}, ledger={"url": URL}
    )
    assert found.startswith(problem), found


def test_other_spool_keys_are_refused(tmp_path: Path) -> None:
    assert problems(tmp_path, spool={"poll_interval": 5}) == [
        "spool.poll_interval: only used with spool.shared = true"
    ]
    assert problems(tmp_path, spool={"shared": "yes"}) == [
        "spool.shared: expected true or false, got a string"
    ]
    (unknown,) = problems(tmp_path, spool={"sharde": True})
    assert unknown.startswith("spool.sharde: unknown key")


@pytest.mark.parametrize("name", ["", "r/1", ".r1", "-r1", "x" * 33, "r 1"])
def test_a_replica_name_is_a_safe_folder_name(tmp_path: Path, name: str) -> None:
    (problem,) = problems(tmp_path, node={"replica": name})
    assert problem.startswith(f"node.replica: {name!r} is not a valid replica name")

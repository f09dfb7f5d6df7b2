"""``[admin]``: local by default, and never open on a network without authentication."""

from __future__ import annotations

from pathlib import Path

import pytest

from concentrador.config import ConfigError, build_config
from concentrador.config.admin import is_loopback
from concentrador.config.render import render_config

BASE = {
    "node": {"id": "0086", "spool": "spool"},
    "server": {"listen": "127.0.0.1:8443", "insecure_http": True},
}


def config_with(admin: dict[str, object] | None, tmp_path: Path):
    data = dict(BASE)
    if admin is not None:
        data["admin"] = admin
    return build_config(data, tmp_path / "concentrador.toml")


def problems_of(admin: dict[str, object], tmp_path: Path) -> list[str]:
    with pytest.raises(ConfigError) as info:
        config_with(admin, tmp_path)
    return info.value.problems


def test_the_console_is_local_by_default(tmp_path: Path) -> None:
    admin = config_with(None, tmp_path).admin
    assert (admin.host, admin.port, admin.token, admin.mutual_tls) == (
        "127.0.0.1",
        9180,
        None,
        False,
    )
    assert '[admin]\nlisten = "127.0.0.1:9180"' in render_config(config_with(None, tmp_path))


@pytest.mark.parametrize(
    "listen", ["0.0.0.0:9180", "[::]:9180", "192.0.2.7:9180", "admin.example:80"]
)
def test_a_public_address_without_auth_is_refused(listen: str, tmp_path: Path) -> None:
    [problem] = problems_of({"listen": listen}, tmp_path)
    assert problem.startswith("admin.listen: ") and "no authentication" in problem


def test_a_public_address_with_a_token_or_mtls_is_accepted(tmp_path: Path) -> None:
    token = "x" * 32
    admin = config_with({"listen": "0.0.0.0:9180", "token": token}, tmp_path).admin
    assert admin.token == token and admin.host == "0.0.0.0"
    for name in ("s.pem", "s.key", "ca.pem"):
        (tmp_path / name).write_text("-")
    tls = {"cert": "s.pem", "key": "s.key", "client_ca": "ca.pem"}
    admin = config_with({"listen": "0.0.0.0:9180", **tls}, tmp_path).admin
    assert admin.mutual_tls and admin.client_ca == tmp_path / "ca.pem"
    # The token is a secret: check-config does not print it.
    rendered = render_config(config_with({"listen": "0.0.0.0:1", "token": token}, tmp_path))
    assert token not in rendered and "token = (set" in rendered


def test_bad_admin_settings_are_reported(tmp_path: Path) -> None:
    assert problems_of({"token": "short"}, tmp_path) == [
        "admin.token: too short: use at least 16 characters"
    ]
    (tmp_path / "s.pem").write_text("-")
    [problem] = problems_of({"cert": "s.pem"}, tmp_path)
    assert problem.startswith("admin: cert, key and client_ca go together")
    [problem] = problems_of({"listen": "nowhere"}, tmp_path)
    assert problem.startswith("admin.listen: 'nowhere' is not host:port")
    [problem] = problems_of({"lisen": "127.0.0.1:1"}, tmp_path)
    assert problem == "admin.lisen: unknown key (did you mean 'listen'?)"


def test_loopback_addresses() -> None:
    assert all(map(is_loopback, ["127.0.0.1", "127.5.0.1", "::1", "localhost", "LOCALHOST"]))
    assert not any(
        map(is_loopback, ["0.0.0.0", "::", "10.0.0.1", "example.org", "127.0.0.1.nip.io"])
    )

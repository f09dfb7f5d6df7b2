"""The one-shot commands, run as the operator runs them: ``python -m concentrador``."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

from concentrador.spool.layout import Spool, SpoolState
from tests.client.conftest import SERVER_ID, bz2_payload, write_client_toml


def write_config(pki: Any, tmp_path: Path, url: str, deliver: str = "publish") -> Path:
    return write_client_toml(pki, tmp_path, f'url = "{url}"\ndeliver = "{deliver}"')


async def cli(config: Path, *args: str) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "concentrador", "--config", str(config), *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(process.communicate(), 60)
    return process.returncode or 0, out.decode(), err.decode()


async def test_ls_time_and_collect(fake_peer: Any, pki: Any, tmp_path: Path) -> None:
    fake_peer.peer.files = {"F1_0086_A.bz2": bz2_payload(1, 5000), "F1_0086_B.bz2": b"BZh9"}
    config = write_config(pki, tmp_path, fake_peer.url)

    code, out, _ = await cli(config, "ls", SERVER_ID)
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split() == ["TYPE", "SIZE", "KB", "NAME"]
    assert (
        lines[1].split() == ["CUR", "1", "F1_0086_A.bz2"] or lines[1].split()[2] == "F1_0086_A.bz2"
    )
    assert lines[-1] == "2 file(s)"

    code, out, _ = await cli(config, "time", SERVER_ID)
    assert code == 0 and "offset:" in out and f"{SERVER_ID}: " in out

    code, out, err = await cli(config, "collect", SERVER_ID)
    assert code == 0, err
    assert out.startswith(f"{SERVER_ID}: 2 listed, 2 stored, 2 confirmed")
    assert "stored F1_0086_A.bz2" in err  # plain log lines, not a bar: stderr is a pipe
    inbox = Spool(tmp_path / "spool").peer(SERVER_ID).dir(SpoolState.INBOX)
    assert sorted(p.name for p in inbox.iterdir()) == ["F1_0086_A.bz2", "F1_0086_B.bz2"]


async def test_unreachable_peer_is_one_line_and_non_zero(pki: Any, tmp_path: Path) -> None:
    config = write_config(pki, tmp_path, "http://127.0.0.1:9/")
    for command in ("collect", "ls", "time"):
        code, _out, err = await cli(config, command, SERVER_ID)
        assert code == 1, (command, err)
        errors = [line for line in err.splitlines() if line.startswith("concentrador:")]
        assert len(errors) == 1 and SERVER_ID in errors[0], err
        assert "Traceback" not in err


async def test_push_publishes_the_outbox_then_sends(fake_peer: Any, pki: Any, tmp_path: Path):
    config = write_config(pki, tmp_path, fake_peer.url, deliver="push")
    outbox = Spool(tmp_path / "spool").peer(SERVER_ID).ensure().dir(SpoolState.OUTBOX)
    (outbox / "F1_0086_20240101_20240102.0").write_text("1;2;3\n" * 1000)
    code, out, err = await cli(config, "push", SERVER_ID)
    assert code == 0, err
    assert "1 file(s) taken from outbox/; 1 delivered" in out
    assert [name for name, _ in fake_peer.peer.pushed] == ["F1_0086_20240101_20240102.0.bz2"]

    # A refused file ends in failed/, exit code 1; `retry` moves it back.
    (outbox / "F1_0086_20240101_20240102.1").write_text("x;y\n")
    fake_peer.peer.push_script = [3]
    code, out, err = await cli(config, "push", SERVER_ID)
    assert code == 1 and "1 failed" in out
    code, out, err = await cli(config, "retry", SERVER_ID, "F1_0086_20240101_20240102.1.bz2")
    assert code == 0, err
    code, out, err = await cli(config, "push", SERVER_ID)
    assert code == 0 and "1 delivered" in out, err


async def test_push_leaves_the_outbox_to_a_daemon_publishing_it(
    fake_peer: Any, pki: Any, tmp_path: Path
) -> None:
    """The one-shot push takes the peer's publish claim, as the daemon's publish
    pass does: while another process holds it, the outbox is left alone."""
    from concentrador.spool.claims import LocalClaims

    config = write_config(pki, tmp_path, fake_peer.url, deliver="push")
    spool = Spool(tmp_path / "spool")
    outbox = spool.peer(SERVER_ID).ensure().dir(SpoolState.OUTBOX)
    (outbox / "F1_0086_20240101_20240102.0").write_text("1;2;3\n" * 1000)
    with LocalClaims(spool).hold(SERVER_ID, "publish"):  # "the daemon", mid-pass
        code, out, err = await cli(config, "push", SERVER_ID)
    assert code == 0, err
    assert "outbox left to the daemon publishing it" in err
    assert "0 file(s) taken from outbox/" in out
    assert sorted(p.name for p in outbox.iterdir()) == ["F1_0086_20240101_20240102.0"]
    assert fake_peer.peer.pushed == []
    # Claim free: the next push publishes and delivers it.
    code, out, err = await cli(config, "push", SERVER_ID)
    assert code == 0 and "1 file(s) taken from outbox/; 1 delivered" in out, err

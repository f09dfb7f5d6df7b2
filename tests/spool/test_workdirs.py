"""Temp folders: ``.work/`` on one host, one folder per replica on a shared spool."""

from __future__ import annotations

import os
import time
from dataclasses import replace
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from concentrador.config.model import Config, NodeConfig, ServerConfig, SpoolConfig
from concentrador.spool.durable import DurableWriter
from concentrador.spool.layout import PeerSpool, Spool, replica_dirname
from concentrador.spool.workdirs import MAX_IDLE, keep_work_tidy, spool_for, sweep_work


def age(path: Path, seconds: float) -> None:
    """Make ``path`` and everything under it look ``seconds`` old."""
    then = time.time() - seconds
    for folder, dirs, files in os.walk(path):
        for name in (*dirs, *files):
            os.utime(os.path.join(folder, name), (then, then))
    os.utime(path, (then, then))


def test_one_host_keeps_the_single_work_folder(tmp_path: Path) -> None:
    peer = Spool(tmp_path).peer("CREC").ensure()
    assert peer.work_dir == peer.staging_dir == tmp_path / "CREC" / ".work"
    assert peer.lock_path == tmp_path / "CREC" / ".work" / "peer.lock"
    (peer.work_dir / ".w-upload.part").write_bytes(b"x")
    (peer.work_dir / "iec-get-1.b64").write_bytes(b"x")
    (peer.work_dir / "publish-abc").mkdir()
    peer.lock_path.touch()
    assert peer.clear_work() == 2
    assert sorted(os.listdir(peer.work_dir)) == ["peer.lock", "publish-abc"]
    assert sweep_work(peer, max_idle=0) == 0  # nothing is swept on one host


def test_each_replica_of_a_shared_spool_has_its_own_folder(tmp_path: Path) -> None:
    a = Spool(tmp_path, replica="host-a:41").peer("CREC").ensure()
    b = Spool(tmp_path, replica="r2").peer("CREC").ensure()
    assert a.work_dir == tmp_path / "CREC" / ".work" / "replicas" / "host-a-41"
    assert b.work_dir == tmp_path / "CREC" / ".work" / "replicas" / "r2"
    # The publisher's staging and the lock file are shared by every replica.
    assert a.staging_dir == b.staging_dir == tmp_path / "CREC" / ".work"
    assert a.lock_path == b.lock_path == Spool(tmp_path).peer("CREC").lock_path
    with DurableWriter(b.work_dir) as upload:  # b's upload in progress
        upload.write(b"half a file")
        (a.work_dir / ".w-old.part").write_bytes(b"a's leftover")
        assert a.clear_work() == 1  # a restarts: only its own folder
        assert upload.temp_path.exists()
        upload.commit(b.dir("inbox") / "F1")
    assert (b.dir("inbox") / "F1").read_bytes() == b"half a file"
    assert os.listdir(a.work_dir) == []


def test_replica_names_become_folder_names() -> None:
    assert replica_dirname("node-1.example.com:4242") == "node-1.example.com-4242"
    assert replica_dirname("r1") == "r1"
    assert replica_dirname("../x") == "x"
    with pytest.raises(ValueError):
        replica_dirname("..")


def test_sweep_removes_only_dead_replicas_folders(tmp_path: Path) -> None:
    me = Spool(tmp_path, replica="me").peer("CREC").ensure()
    live = Spool(tmp_path, replica="live").peer("CREC").ensure()
    dead = Spool(tmp_path, replica="dead").peer("CREC").ensure()
    (dead.work_dir / ".w-1.part").write_bytes(b"x")
    age(dead.work_dir, MAX_IDLE + 60)
    # An old folder with one file still being written is alive.
    (live.work_dir / ".w-2.part").write_bytes(b"x")
    age(live.work_dir, MAX_IDLE + 60)
    os.utime(live.work_dir / ".w-2.part")
    age(me.work_dir, MAX_IDLE + 60)  # ours, however old: never swept by us
    staging = me.staging_dir / "publish-123"
    staging.mkdir()
    loose = me.staging_dir / ".w-from-before.part"
    loose.write_bytes(b"x")
    me.lock_path.touch()
    for path in (staging, loose, me.lock_path):
        age(path, MAX_IDLE + 60)

    assert sweep_work(me) == 2  # dead's folder and the loose old file
    replicas = sorted(os.listdir(me.staging_dir / "replicas"))
    assert replicas == ["live", "me"]
    assert sorted(os.listdir(me.staging_dir)) == ["peer.lock", "publish-123", "replicas"]
    assert sweep_work(me) == 0


def test_keep_work_tidy_keeps_our_folder_fresh_and_recreates_it(tmp_path: Path) -> None:
    me = Spool(tmp_path, replica="me").peer("CREC").ensure()
    other = Spool(tmp_path, replica="other").peer("CREC")
    age(me.work_dir, MAX_IDLE + 60)
    keep_work_tidy(me)
    assert sweep_work(other) == 0  # me's folder is fresh again for the others
    # Swept anyway (a clock jump, a wrong bound): the next temp file recreates it.
    age(me.work_dir, MAX_IDLE + 60)
    assert sweep_work(other) == 1
    assert not me.work_dir.exists()
    with DurableWriter(me.work_dir) as writer:
        writer.write(b"data")
        writer.commit(me.dir("inbox") / "F2")
    assert (me.dir("inbox") / "F2").read_bytes() == b"data"
    keep_work_tidy(PeerSpool(tmp_path, "CREC"))  # one host: nothing to do


def test_spool_for_follows_the_config(tmp_path: Path) -> None:
    config = Config(
        path=tmp_path / "c.toml",
        node=NodeConfig(id="0086", spool=tmp_path / "spool", timezone=ZoneInfo("UTC")),
        server=ServerConfig("127.0.0.1", 0, None, None, None, insecure_http=True),
        client=None,
    )
    assert spool_for(config).replica is None
    assert spool_for(config).peer("CREC").work_dir == tmp_path / "spool" / "CREC" / ".work"
    shared = replace(config, spool=SpoolConfig(shared=True))
    assert spool_for(shared).replica == f"{os.uname().nodename}:{os.getpid()}"
    named = replace(shared, node=replace(config.node, replica="r7"))
    assert spool_for(named).peer("CREC").work_dir.name == "r7"

"""A throwaway PostgreSQL server for the scale-out tests: Debian's binaries, no cluster tools.

``initdb`` runs into a temporary folder as a non-root user, ``postgres``
listens on 127.0.0.1 on a free port (its unix socket in the same folder, so
nothing touches ``/var/run/postgresql``), every connection from loopback is
trusted, and :meth:`PostgresServer.stop` ends the postmaster by its PID.
Durability is turned off (``fsync=off``): these tests crash replicas, never
the database.
"""

from __future__ import annotations

import itertools
import re
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from tests.scaleout.processes import (
    ToolMissing,
    chown_to,
    free_port,
    log_tail,
    server_user,
    spawn,
    stop,
)

SUPERUSER = "concentrador"
START_TIMEOUT = 30.0
_names = itertools.count(1)


def postgres_bin() -> Path:
    """The newest ``/usr/lib/postgresql/<major>/bin`` that has initdb and postgres."""
    folders = [
        folder
        for folder in Path("/usr/lib/postgresql").glob("*/bin")
        if (folder / "initdb").is_file() and (folder / "postgres").is_file()
    ]
    if not folders:
        raise ToolMissing(
            "PostgreSQL not installed (/usr/lib/postgresql/*/bin/initdb): "
            "bash scripts/setup-env.sh test installs Debian's postgresql"
        )

    def major(folder: Path) -> tuple[int, ...]:
        return tuple(int(part) for part in re.findall(r"\d+", folder.parent.name))

    return max(folders, key=major)


class PostgresServer:
    """One postmaster. ``start()`` it, ``url(db)``/``create_database()``, then ``stop()``."""

    def __init__(self, settings: Sequence[str] = ()) -> None:
        """``settings``: extra ``name=value`` server settings (the bench preloads a module)."""
        self.settings = list(settings)
        try:
            import psycopg  # noqa: F401  (the fixtures talk to the server through it)
        except ImportError as exc:
            raise ToolMissing(
                f"psycopg not installed: pip install -e '.[postgresql]' ({exc})"
            ) from exc
        self.bin = postgres_bin()
        self.user = server_user()
        # Not under pytest's tmp_path: as root that is a 0700 folder the
        # unprivileged server user could not even traverse.
        self.directory = Path(tempfile.mkdtemp(prefix="concentrador-pg-"))
        self.directory.chmod(0o700)
        chown_to(self.directory, self.user)
        self.data = self.directory / "data"
        self.sockets = self.directory / "sockets"
        self.log = self.directory / "postgres.log"
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        if self.process is None:
            raise RuntimeError("PostgreSQL is not running")
        return self.process.pid

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/{database}"

    # -- life cycle ----------------------------------------------------------
    def start(self) -> PostgresServer:
        try:
            self._initdb()
            # A free port can be taken between the probe and the bind: try again.
            for _ in range(3):
                self.port = free_port()
                if self._launch():
                    return self
            raise RuntimeError(f"PostgreSQL did not start:\n{log_tail(self.log)}")
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """Fast shutdown (SIGINT: roll back, disconnect) of the postmaster by PID; remove it all."""
        try:
            if self.process is not None:
                stop(self.process, signal.SIGINT)
        finally:
            self.process = None
            shutil.rmtree(self.directory, ignore_errors=True)

    def __enter__(self) -> PostgresServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _run(self, *argv: str) -> None:
        process = spawn(argv, user=self.user, log=self.log, parent_death_signal="KILL")
        if process.wait(120) != 0:
            raise RuntimeError(f"{argv[0]} failed:\n{log_tail(self.log)}")

    def _initdb(self) -> None:
        self.sockets.mkdir()
        chown_to(self.sockets, self.user)
        self._run(
            str(self.bin / "initdb"),
            f"--pgdata={self.data}",
            f"--username={SUPERUSER}",
            "--auth=trust",  # loopback and the socket only: listen_addresses below
            "--encoding=UTF8",
            "--locale=C",
            "--no-sync",
        )

    def _launch(self) -> bool:
        argv: list[str | Path] = [
            self.bin / "postgres",
            "-D",
            self.data,
            "-c",
            "listen_addresses=127.0.0.1",
            "-c",
            f"port={self.port}",
            "-c",
            f"unix_socket_directories={self.sockets}",
            "-c",
            "fsync=off",
            "-c",
            "synchronous_commit=off",
            "-c",
            "full_page_writes=off",
            # Room for several replicas' pools plus the tests' own connections.
            "-c",
            "max_connections=200",
            *(arg for setting in self.settings for arg in ("-c", setting)),
        ]
        # SIGQUIT is PostgreSQL's immediate shutdown: the backends go with it.
        self.process = spawn(argv, user=self.user, log=self.log, parent_death_signal="QUIT")
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                self.process = None
                if "could not bind" in log_tail(self.log, 10):
                    return False  # the port was taken meanwhile
                raise RuntimeError(f"PostgreSQL exited at start-up:\n{log_tail(self.log)}")
            if self._answers():
                return True
            time.sleep(0.1)
        raise RuntimeError(f"PostgreSQL not ready in {START_TIMEOUT} s:\n{log_tail(self.log)}")

    def _answers(self) -> bool:
        import psycopg

        try:
            with psycopg.connect(self.url(), connect_timeout=2) as connection:
                connection.execute("SELECT 1")
            return True
        except psycopg.OperationalError:
            return False

    # -- databases -------------------------------------------------------------
    def create_database(self, hint: str = "test") -> str:
        """A new empty database named after ``hint``; returns its URL."""
        import psycopg
        from psycopg import sql

        slug = re.sub(r"[^a-z0-9]+", "_", hint.lower()).strip("_")
        name = f"t{next(_names)}_{slug}"[:63]
        with psycopg.connect(self.url(), autocommit=True) as connection:
            connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return self.url(name)

    def drop_database(self, url: str) -> None:
        """Drop it, disconnecting whoever is still connected (a test's leftover pool)."""
        import psycopg
        from psycopg import sql

        name = url.rsplit("/", 1)[1]
        with psycopg.connect(self.url(), autocommit=True) as connection:
            connection.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )

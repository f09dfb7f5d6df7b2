"""Starting the scale-out tests' servers (PostgreSQL, HAProxy) and stopping them by PID.

Every server is started through ``setpriv --pdeathsig``: if the pytest process
dies without running its teardown (SIGKILL, OOM), the kernel still signals the
server, so no PostgreSQL or HAProxy outlives the session. The fixtures stop
them by PID in their own ``finally`` too; this is only the last resort.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

REQUIRE_ENV = "CONCENTRADOR_REQUIRE_SCALEOUT"
# The users the servers run as when the tests run as root (CI): PostgreSQL refuses
# to run as root. Debian's postgresql package creates `postgres`; `nobody` is the
# fallback on a machine where the server binaries came some other way.
UNPRIVILEGED_USERS = ("postgres", "nobody")


class ToolMissing(RuntimeError):
    """A server binary the scale-out tests need is not installed."""


def required() -> bool:
    """In CI (or when asked) a missing PostgreSQL/HAProxy fails instead of skipping."""
    return os.environ.get(REQUIRE_ENV) == "1" or os.environ.get("CI", "") not in ("", "0", "false")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def find_program(name: str, *folders: Path) -> Path:
    for folder in (*folders, Path("/usr/sbin"), Path("/usr/bin")):
        candidate = folder / name
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
    found = shutil.which(name)
    if found is None:
        raise ToolMissing(f"{name} not found (install it: bash scripts/setup-env.sh test)")
    return Path(found)


def server_user() -> pwd.struct_passwd | None:
    """Who the servers run as: None (ourselves) unless we are root."""
    if os.geteuid() != 0:
        return None
    for name in UNPRIVILEGED_USERS:
        try:
            return pwd.getpwnam(name)
        except KeyError:
            continue
    raise ToolMissing(f"running as root and none of the users {UNPRIVILEGED_USERS} exists")


def chown_to(path: Path, user: pwd.struct_passwd | None) -> None:
    if user is not None:
        os.chown(path, user.pw_uid, user.pw_gid)


def spawn(
    argv: Sequence[str | os.PathLike[str]],
    *,
    user: pwd.struct_passwd | None,
    log: Path,
    parent_death_signal: str,
    env: Mapping[str, str] | None = None,
) -> subprocess.Popen[bytes]:
    """Start ``argv`` (as ``user`` when given) with its output in ``log``.

    ``setpriv`` execs the program, so the returned PID is the server itself.
    """
    wrapper: list[str] = [str(find_program("setpriv")), f"--pdeathsig={parent_death_signal}"]
    if user is not None:
        wrapper += [f"--reuid={user.pw_uid}", f"--regid={user.pw_gid}", "--clear-groups"]
    environment = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL": "C", "LANG": "C"}
    if user is not None:
        environment["HOME"] = user.pw_dir
    environment.update(env or {})
    with open(log, "ab") as output:
        return subprocess.Popen(
            [*wrapper, *map(str, argv)],
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            env=environment,
            # Its own session: a Ctrl-C in the terminal reaches pytest, whose
            # teardown then stops the server in order, not the server directly.
            start_new_session=True,
        )


def stop(process: subprocess.Popen[bytes], sig: signal.Signals, timeout: float = 15.0) -> None:
    """Send ``sig`` to the process's PID, SIGKILL it if it has not exited within ``timeout``."""
    if process.poll() is not None:
        return
    try:
        os.kill(process.pid, sig)
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout)
    except ProcessLookupError:
        process.wait(timeout)


def log_tail(log: Path, lines: int = 30) -> str:
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def pid_alive(pid: int) -> bool:
    """True while ``pid`` exists and is not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    # The state follows the parenthesised command name, which may contain spaces.
    return stat.rpartition(")")[2].split()[0] != "Z"


def children_of(pid: int) -> list[int]:
    """PIDs whose parent is ``pid`` (PostgreSQL's backends and helpers)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rpartition(")")[2].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(entry.name))
    return found

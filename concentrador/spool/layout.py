"""Where things live on disk: the per-peer spool folders.

The spool is a Postfix-style queue: every state a file can be in is a folder,
and a state change is an atomic rename (see :mod:`concentrador.spool.durable`).
A restart therefore resumes from whatever is on disk. The folder names are the
operator-facing contract documented in ``spool/README.md`` (at the top of the
repository).

::

    <root>/ledger.sqlite3
    <root>/<PEER>/outbox/      operator drops files here (optional <TYPE>/ subfolders)
    <root>/<PEER>/published/   offered to PEER (listed by informacionDisponible)
    <root>/<PEER>/sending/     waiting to be pushed to PEER (never listed)
    <root>/<PEER>/delivered/   confirmed by PEER, or pushed with code 0
    <root>/<PEER>/expired/     publication window passed unconfirmed
    <root>/<PEER>/failed/      escalated: NAME plus NAME.reason
    <root>/<PEER>/inbox/       complete files received from PEER
    <root>/<PEER>/manual/      received outside the load window (code 6)
    <root>/<PEER>/partial/     blocks waiting for their siblings
    <root>/<PEER>/archive/     inputs consumed by a transformation, kept for audit
    <root>/<PEER>/.work/       temp names; only our uncommitted files; cleared on start-up

On a shared spool (``[spool] shared = true``: several replicas mount it) each
process writes its temp files in ``<PEER>/.work/replicas/<REPLICA>/`` instead
(:attr:`PeerSpool.work_dir`), so a replica that starts clears its own folder,
never the in-progress files of the others; the publisher's staging folders
and the peer lock file stay in ``.work/`` itself (:attr:`PeerSpool.staging_dir`),
where any replica holding the publish claim recovers a dead one's staging.
Folders of replicas that are gone are swept by age (:mod:`.workdirs`).
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
from enum import StrEnum
from pathlib import Path

__all__ = [
    "LEDGER_FILENAME",
    "REPLICAS_DIRNAME",
    "WORK_DIRNAME",
    "InvalidPeerId",
    "PeerSpool",
    "Spool",
    "SpoolState",
    "is_temp_name",
    "validate_peer_id",
]

LEDGER_FILENAME = "ledger.sqlite3"
WORK_DIRNAME = ".work"
REPLICAS_DIRNAME = "replicas"
"""``.work/replicas/``: one temp folder per replica of a shared spool."""

# Peer ids become directory names, so they are held to a conservative
# alphabet: no separators, no leading dot (no hidden or "."/".." folders),
# nothing a shell or another OS would mangle.
_PEER_ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")

# Suffixes that editors, copy tools and partial downloads use for files that
# are still being written. A watcher or scanner must never pick these up.
_TEMP_SUFFIXES = (".tmp", ".temp", ".part", ".partial", ".swp", ".swx", ".crdownload", "~")


#: Publisher staging folders in ``.work/``; left alone by ``clear_work``.
PUBLISH_STAGING_PREFIX = "publish-"


class SpoolState(StrEnum):
    """One folder per state of a file in a peer's spool."""

    OUTBOX = "outbox"
    PUBLISHED = "published"
    SENDING = "sending"
    DELIVERED = "delivered"
    EXPIRED = "expired"
    FAILED = "failed"
    INBOX = "inbox"
    MANUAL = "manual"
    PARTIAL = "partial"
    ARCHIVE = "archive"


class InvalidPeerId(ValueError):
    """A peer id that cannot safely be used as a folder name."""


def validate_peer_id(peer_id: str) -> str:
    """Return ``peer_id`` unchanged if it is a safe folder name, else raise."""
    if not isinstance(peer_id, str) or not _PEER_ID_RE.fullmatch(peer_id):
        raise InvalidPeerId(
            f"invalid peer id {peer_id!r}: use 1-64 letters, digits, '_', '.', '-', "
            "not starting with '.' or '-'"
        )
    return peer_id


def replica_dirname(replica: str) -> str:
    """A replica's name (``host:pid``, or ``[node] replica``) as a safe folder name."""
    safe = re.sub(r"[^A-Za-z0-9_.-]", "-", replica).lstrip(".-")[:96]
    if not safe:
        raise ValueError(f"replica name {replica!r} gives no usable folder name")
    return safe


def is_temp_name(name: str) -> bool:
    """True for names that are not (yet) real files: dotfiles and temp suffixes.

    Used by scanners and the watcher so a file being copied in by an operator
    (``rsync`` writes ``.NAME.XXXX``, browsers ``NAME.crdownload``) is not
    picked up half-written.
    """
    if not name or name.startswith("."):
        return True
    lower = name.lower()
    return lower.endswith(_TEMP_SUFFIXES)


class PeerSpool:
    """The folders of one peer under the spool root.

    ``replica``: this process's name on a shared spool (None: not shared, the
    single-node layout); it only moves :attr:`work_dir`.
    """

    def __init__(self, root: Path, peer: str, replica: str | None = None) -> None:
        self.peer = validate_peer_id(peer)
        self.root = Path(root)
        self.base = self.root / self.peer
        self.replica = replica
        self._replica_dir = replica_dirname(replica) if replica is not None else None

    def __repr__(self) -> str:
        shared = f", replica={self.replica!r}" if self.replica is not None else ""
        return f"PeerSpool({str(self.root)!r}, {self.peer!r}{shared})"

    def dir(self, state: SpoolState | str) -> Path:
        """The folder of ``state`` (accepts the enum or its string value)."""
        return self.base / SpoolState(state).value

    @property
    def work_dir(self) -> Path:
        """Hidden temp area, on the same file system so renames are atomic:
        ``.work/``, or ``.work/replicas/<REPLICA>/`` on a shared spool."""
        if self._replica_dir is None:
            return self.staging_dir
        return self.staging_dir / REPLICAS_DIRNAME / self._replica_dir

    @property
    def staging_dir(self) -> Path:
        """``.work/`` itself, whoever we are: the publisher's staging folders
        (recovered by whichever replica holds the publish claim) and the lock file."""
        return self.base / WORK_DIRNAME

    @property
    def lock_path(self) -> Path:
        """The per-peer lock file (see :mod:`concentrador.spool.locks`)."""
        return self.staging_dir / "peer.lock"

    def ensure(self) -> PeerSpool:
        """Create every folder of this peer (idempotent); returns ``self``."""
        for state in SpoolState:
            self.dir(state).mkdir(parents=True, exist_ok=True)
        self.work_dir.mkdir(parents=True, exist_ok=True)
        return self

    def clear_work(self) -> int:
        """Empty ``.work/`` except the lock file; call on start-up only.

        Safe because ``.work/`` only ever holds our own derived files that were
        never committed (a commit renames them out). Run it after anything
        that recovers from staging folders in ``.work/`` (the publisher's
        ``recover()``). Returns how many entries were removed.

        On a shared spool only this replica's own folder is emptied: the rest
        of ``.work/`` holds other live replicas' uploads in progress (the dead
        ones' folders go by age: :func:`.workdirs.sweep_work`).
        """
        removed = 0
        if not self.work_dir.is_dir():
            return removed
        if self._replica_dir is not None:
            for entry in os.scandir(self.work_dir):
                _remove(entry)
                removed += 1
            return removed
        for entry in os.scandir(self.work_dir):
            if entry.path == str(self.lock_path):
                continue
            if entry.name.startswith(PUBLISH_STAGING_PREFIX):
                # A staging folder may hold blocks whose ledger transaction
                # already committed; only Publisher.recover() may judge it.
                continue
            if entry.name == REPLICAS_DIRNAME and entry.is_dir(follow_symlinks=False):
                # A shared spool's replicas' folders (say after turning
                # [spool] shared off): only their age says they are dead.
                continue
            _remove(entry)
            removed += 1
        return removed

    def files(self, state: SpoolState | str) -> list[Path]:
        """Regular, non-temp files directly in a flat state folder, sorted by name."""
        folder = self.dir(state)
        try:
            entries = list(os.scandir(folder))
        except FileNotFoundError:
            return []
        return sorted(
            Path(e.path)
            for e in entries
            if e.is_file(follow_symlinks=False) and not is_temp_name(e.name)
        )


def _remove(entry: os.DirEntry[str]) -> None:
    if entry.is_dir(follow_symlinks=False):
        shutil.rmtree(entry.path, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(entry.path)


class Spool:
    """The spool root: one :class:`PeerSpool` per peer plus the ledger file.

    ``replica``: set on a shared spool (:func:`.workdirs.spool_for` reads the
    config); every :class:`PeerSpool` it gives then has its own temp folder.
    """

    def __init__(self, root: Path, replica: str | None = None) -> None:
        self.root = Path(root)
        self.replica = replica

    def __repr__(self) -> str:
        shared = f", replica={self.replica!r}" if self.replica is not None else ""
        return f"Spool({str(self.root)!r}{shared})"

    @property
    def ledger_path(self) -> Path:
        return self.root / LEDGER_FILENAME

    def peer(self, peer_id: str) -> PeerSpool:
        return PeerSpool(self.root, peer_id, self.replica)

    def ensure(self, peer_ids: list[str] | tuple[str, ...] = ()) -> None:
        """Create the root and the folders of the given peers."""
        self.root.mkdir(parents=True, exist_ok=True)
        for peer_id in peer_ids:
            self.peer(peer_id).ensure()

    def peers(self) -> list[str]:
        """Peer ids that have a folder on disk (valid names only), sorted."""
        try:
            entries = list(os.scandir(self.root))
        except FileNotFoundError:
            return []
        found = []
        for entry in entries:
            if entry.is_dir(follow_symlinks=False) and _PEER_ID_RE.fullmatch(entry.name):
                found.append(entry.name)
        return sorted(found)

"""Durable writes and moves: "done" means it survives a power cut.

The recipe is the classic one: write under a temp name, ``fsync`` the file,
``rename`` it into place, ``fsync`` the directory that now holds the name.
A state change in the spool is a rename of an existing file into another
folder, followed by an ``fsync`` of both folders.

Moves never overwrite: two actors (the daemon and the CLI) racing to move a
file into the same place must not silently lose one of them. On Linux this
uses ``renameat2(RENAME_NOREPLACE)``; elsewhere, or on file systems without
it, ``link`` + ``unlink`` (also atomic about the target; a crash between the
two leaves the file under both names, which the next sweep resolves).
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import errno
import hashlib
import itertools
import os
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import NoReturn

__all__ = [
    "READ_SIZE",
    "DurableWriter",
    "StorageError",
    "durable_move",
    "file_md5",
    "fsync_dir",
    "sync_folders",
    "write_file_durably",
]

READ_SIZE = 1 << 20
"""Streaming read size: files are never loaded whole into memory."""

_RENAME_NOREPLACE = 1
_AT_FDCWD = -100


class StorageError(OSError):
    """The disk refused (ENOSPC, EIO, ...): nothing was left behind.

    Keeps the original ``errno`` so callers can tell "disk full" from others;
    ``str()`` is one line that names the path.
    """

    def __init__(self, action: str, path: Path | str, cause: OSError) -> None:
        super().__init__(cause.errno, cause.strerror or str(cause), str(path))
        self.action = action
        self.path = Path(path)
        self.__cause__ = cause

    def __str__(self) -> str:
        reason = self.strerror or "I/O error"
        code = errno.errorcode.get(self.errno or 0, str(self.errno))
        return f"could not {self.action} {self.path}: {reason} ({code})"


def fsync_dir(path: Path | str) -> None:
    """Flush a directory's entries (new, renamed or removed names) to disk."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def sync_folders(*folders: Path) -> None:
    """Fsync each of ``folders`` once (after moves made with ``sync=False``)."""
    for folder in dict.fromkeys(Path(f) for f in folders):
        try:
            fsync_dir(folder)
        except OSError as exc:
            raise StorageError("sync folder", folder, exc) from exc


def _load_renameat2() -> Callable[[int, bytes, int, bytes, int], int] | None:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
        func = libc.renameat2
    except (OSError, AttributeError):
        return None
    func.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    func.restype = ctypes.c_int
    return func


_renameat2 = _load_renameat2()


def rename_noreplace(src: Path | str, dst: Path | str) -> None:
    """Atomically rename ``src`` to ``dst``; ``FileExistsError`` if ``dst`` exists."""
    global _renameat2
    if _renameat2 is not None:
        rc = _renameat2(_AT_FDCWD, os.fsencode(src), _AT_FDCWD, os.fsencode(dst), _RENAME_NOREPLACE)
        if rc == 0:
            return
        err = ctypes.get_errno()
        if err not in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP):
            raise OSError(err, os.strerror(err), str(dst))
        # The file system does not support the flag; use link + unlink below.
    os.link(src, dst)  # raises FileExistsError atomically if dst exists
    os.unlink(src)


def durable_move(src: Path, dst_dir: Path, name: str | None = None, *, sync: bool = True) -> Path:
    """Move ``src`` into ``dst_dir`` (as ``name``, default its own name), durably.

    Never overwrites: an existing target raises ``FileExistsError`` and
    ``src`` stays where it was; a missing ``src`` raises ``FileNotFoundError``.
    Both folders are fsynced so that the move is not undone by a crash.
    Other ``OSError``s become :class:`StorageError`.

    ``sync=False`` leaves the two folder fsyncs to the caller, who moves
    several files between the same two folders and then calls
    :func:`fsync_dir` once per folder (two fsyncs instead of two per file).
    The moves are durable only after that, so the caller must not report
    success before it.
    """
    src = Path(src)
    dst_dir = Path(dst_dir)
    target = dst_dir / (name if name is not None else src.name)
    try:
        rename_noreplace(src, target)
    except FileExistsError:
        raise
    except FileNotFoundError as exc:
        # A vanished source is a race the caller handles (someone else moved
        # it first); a missing destination folder is a storage problem.
        if not os.path.lexists(src):
            raise
        raise StorageError("move", f"{src} -> {target}", exc) from exc
    except OSError as exc:
        raise StorageError("move", f"{src} -> {target}", exc) from exc
    if not sync:
        return target
    try:
        fsync_dir(dst_dir)
        if src.parent != dst_dir:
            fsync_dir(src.parent)
    except OSError as exc:
        raise StorageError("sync folder of", target, exc) from exc
    return target


_TEMP_FLAGS = os.O_RDWR | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
_TEMP_TRIES = 10_000
_temp_tag = ""
_temp_count = itertools.count()


def _new_temp_tag() -> None:
    """A random tag per process (drawn again in a forked child): the temp names
    of two processes never follow one sequence."""
    global _temp_tag, _temp_count
    _temp_tag = os.urandom(6).hex()
    _temp_count = itertools.count()


_new_temp_tag()
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_new_temp_tag)


def _make_temp(folder: Path, suffix: str) -> tuple[int, Path]:
    """``tempfile.mkstemp`` for a writer, at a fraction of its cost (one per
    received file): ``.w-<process tag>-<counter><suffix>``, created with
    ``O_EXCL`` (mode 0600), so a name in use is skipped, never shared."""
    for _ in range(_TEMP_TRIES):
        path = folder / f".w-{_temp_tag}-{next(_temp_count):x}{suffix}"
        try:
            return os.open(path, _TEMP_FLAGS, 0o600), path
        except FileExistsError:
            continue
    raise FileExistsError(errno.EEXIST, "no usable temp file name", str(folder))


class DurableWriter:
    """Write a file incrementally under a temp name, then commit it durably.

    The MD5 and size are computed while writing, so a checksum is never a
    second pass over the data. Usage::

        with DurableWriter(spool.work_dir) as w:
            for chunk in source:
                w.write(chunk)
            w.commit(final_path)

    Leaving the ``with`` block without a successful :meth:`commit` removes the
    temp file. Storage errors raise :class:`StorageError` after the temp has
    been removed; ``commit(replace=False)`` onto an existing name raises
    ``FileExistsError`` and keeps the (fsynced) temp so the caller can commit
    under another name or :meth:`abort`.
    """

    def __init__(self, work_dir: Path, *, hash: bool = True, suffix: str = ".part") -> None:
        self.work_dir = Path(work_dir)
        self._md5 = hashlib.md5(usedforsecurity=False) if hash else None
        self._size = 0
        self._closed = False
        self._done = False  # committed or aborted
        self.final_path: Path | None = None
        try:
            try:
                fd, temp = _make_temp(self.work_dir, suffix)
            except FileNotFoundError:
                # A replica's own temp folder on a shared spool, swept by
                # another as dead (spool/workdirs.py) or not made yet.
                self.work_dir.mkdir(parents=True, exist_ok=True)
                fd, temp = _make_temp(self.work_dir, suffix)
        except OSError as exc:
            raise StorageError("create a temp file in", self.work_dir, exc) from exc
        self._fd = fd
        self.temp_path = temp

    # -- writing -------------------------------------------------------------
    def write(self, data: bytes | bytearray | memoryview) -> int:
        """Append ``data``; returns its length. Hash and size follow along."""
        if self._closed or self._done:
            raise ValueError(f"write to a closed DurableWriter ({self.temp_path})")
        view = memoryview(data).cast("B")
        total = len(view)
        try:
            while view:
                written = os.write(self._fd, view)
                view = view[written:]
        except OSError as exc:
            self._fail("write", exc)
        if self._md5 is not None:
            self._md5.update(data)
        self._size += total
        return total

    def write_hashed(self, data: bytes, md5: hashlib._Hash) -> int:
        """:meth:`write` of the first bytes, whose MD5 (``md5``, of ``data``) the
        caller has taken already: the bytes are not hashed a second time."""
        if self._size or self._md5 is None:
            raise ValueError("write_hashed is for the first bytes of a hashing writer")
        self._md5 = None
        written = self.write(data)
        self._md5 = md5.copy()
        return written

    @property
    def md5(self) -> str:
        """Lowercase hex MD5 of everything written so far."""
        if self._md5 is None:
            raise ValueError("this DurableWriter was created with hash=False")
        return self._md5.hexdigest()

    @property
    def size(self) -> int:
        return self._size

    # -- finishing -----------------------------------------------------------
    def _sync_and_close(self) -> None:
        if self._closed:
            return
        try:
            os.fsync(self._fd)
        except OSError as exc:
            self._fail("flush", exc)
        self._closed = True
        try:
            os.close(self._fd)
        except OSError as exc:
            self._fail("close", exc)

    def commit(self, final_path: Path, *, replace: bool = False, sync: bool = True) -> Path:
        """Flush, fsync, rename to ``final_path``, fsync its folder; returns it.

        ``sync=False`` leaves the folder fsync to the caller, who commits
        several files into one folder and then fsyncs it once
        (:func:`sync_folders`): the file is durable only after that, so the
        caller must not report success before it (a group commit).
        """
        if self._done:
            raise ValueError(f"DurableWriter already finished ({self.temp_path})")
        final_path = Path(final_path)
        self._sync_and_close()
        try:
            if replace:
                os.replace(self.temp_path, final_path)
            else:
                rename_noreplace(self.temp_path, final_path)
        except FileExistsError:
            raise  # temp kept on purpose: see the class docstring
        except OSError as exc:
            self._fail(f"store {final_path.name} in", exc, path=final_path.parent)
        self._done = True
        self.final_path = final_path
        if not sync:
            return final_path
        try:
            fsync_dir(final_path.parent)
        except OSError as exc:
            # The name is visible but not durable: do not claim success. A new
            # name we just created is ours to take back; a replaced one is not.
            if not replace:
                with contextlib.suppress(OSError):
                    os.unlink(final_path)
            raise StorageError("sync folder of", final_path, exc) from exc
        return final_path

    def abort(self) -> None:
        """Throw the temp away. Idempotent; never raises for a missing temp."""
        if self._done:
            return
        self._done = True
        if not self._closed:
            self._closed = True
            with contextlib.suppress(OSError):
                os.close(self._fd)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.temp_path)

    def _fail(self, action: str, exc: OSError, *, path: Path | None = None) -> NoReturn:
        self.abort()
        raise StorageError(action, path or self.temp_path, exc) from exc

    # -- context manager -----------------------------------------------------
    def __enter__(self) -> DurableWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        # An uncommitted temp is garbage whether or not an exception is flying.
        self.abort()

    def __del__(self) -> None:  # last resort: never leak an fd
        if not getattr(self, "_closed", True):
            with contextlib.suppress(OSError):
                os.close(self._fd)


def write_file_durably(
    work_dir: Path, final_path: Path, data: bytes, *, replace: bool = False
) -> Path:
    """Write a small file (e.g. a ``.reason``) durably in one call."""
    with DurableWriter(work_dir, hash=False) as writer:
        writer.write(data)
        return writer.commit(final_path, replace=replace)


def file_md5(path: Path) -> tuple[str, int]:
    """(lowercase hex MD5, size) of a file, read in 1 MiB pieces."""
    digest = hashlib.md5(usedforsecurity=False)
    size = 0
    with open(path, "rb") as handle:
        while chunk := handle.read(READ_SIZE):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size

"""Keeping a file aside without ever losing it to a name clash.

Nothing a peer or an operator gave us is deleted: a replaced or consumed file
is archived under a free name (:func:`move_aside`), and a file that cannot go
on is escalated with a one-line ``NAME.reason`` (:func:`move_with_reason`).
Both rest on :mod:`concentrador.spool.durable`'s moves.
"""

from __future__ import annotations

import errno
import os
from datetime import UTC, datetime
from pathlib import Path

from concentrador.spool.durable import StorageError, durable_move, write_file_durably

__all__ = ["move_aside", "move_with_reason"]


def move_aside(
    src: Path,
    dst_dir: Path,
    *,
    stamp: bool = False,
    now: datetime | None = None,
    sync: bool = True,
) -> Path:
    """Durably move ``src`` into ``dst_dir`` without ever losing a file to a name clash.

    Keeps the name when it is free (unless ``stamp``); otherwise appends a UTC
    timestamp, ``NAME.20240131T235959.123456Z``, and a counter if even that
    is taken. Used to archive replaced or consumed files: nothing is deleted.
    ``sync=False``: see :func:`durable_move` (the caller fsyncs both folders).
    """
    src = Path(src)
    if not stamp:
        try:
            return durable_move(src, dst_dir, sync=sync)
        except FileExistsError:
            pass
    suffix = (now or datetime.now(UTC)).astimezone(UTC).strftime("%Y%m%dT%H%M%S.%fZ")
    for attempt in range(1000):
        tail = f".{suffix}" + (f".{attempt}" if attempt else "")
        name = _shortened(src.name, _MAX_NAME_BYTES - len(tail)) + tail
        try:
            return durable_move(src, dst_dir, name, sync=sync)
        except FileExistsError:
            continue
    raise StorageError(
        "find a free name for", dst_dir / src.name, OSError(errno.EEXIST, "all names taken")
    )


_MAX_NAME_BYTES = 255
"""The usual file-system limit on one name: a stamped name must fit in it."""


def _shortened(name: str, max_bytes: int) -> str:
    """``name`` cut to at most ``max_bytes`` file-system bytes.

    A valid 240-byte name plus a time stamp would otherwise fail with
    ENAMETOOLONG, and the file could never be moved aside (or replaced) at
    all. A UTF-8 name is cut between characters; an operator's file whose
    name is not UTF-8 is cut bytewise (it round-trips through ``fsdecode``).
    """
    raw = os.fsencode(name)
    if len(raw) <= max_bytes:
        return name
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return os.fsdecode(raw[:max_bytes])
    return raw[:max_bytes].decode("utf-8", errors="ignore")


def move_with_reason(
    src: Path,
    dst_dir: Path,
    work_dir: Path,
    why: str,
    *,
    last_error: str | None = None,
    now: datetime | None = None,
) -> Path:
    """Escalate ``src`` into ``dst_dir`` (normally ``failed/``) with ``NAME.reason``.

    The reason is written first, so an operator never finds an unexplained
    file; a name clash gets a timestamp suffix like :func:`move_aside`. The
    reason file is one line: why, when, last error (newlines flattened, since
    a peer's error text may be hostile).
    """
    src = Path(src)
    moment = (now or datetime.now(UTC)).astimezone(UTC)
    suffix = ""
    if os.path.lexists(dst_dir / src.name) or os.path.lexists(dst_dir / f"{src.name}.reason"):
        # Never overwrite an earlier escalation or its explanation.
        suffix = f".{moment.strftime('%Y%m%dT%H%M%S.%fZ')}"
    # NAME and NAME.reason must both fit in a file name: a long (valid) peer
    # name is shortened rather than leaving the file stuck where it is.
    base = _shortened(src.name, _MAX_NAME_BYTES - len(".reason") - len(suffix))
    name = base + suffix
    fields = [why, f"at {moment.strftime('%Y-%m-%dT%H:%M:%SZ')}"]
    if base != src.name:
        fields.insert(0, f"file {src.name} kept as {name}")
    if last_error:
        fields.append(f"last error: {last_error}")
    line = " | ".join(" ".join(str(f).split()) for f in fields) + "\n"
    write_file_durably(work_dir, dst_dir / f"{name}.reason", line.encode(), replace=True)
    return durable_move(src, dst_dir, name)

"""Decompressing one run of bzip2 blocks: with ``lbzip2`` when installed, else ``bz2``.

:class:`~concentrador.spool.inbound.streamcheck.StreamCheck` hands each run
(a standalone stream) to a :data:`RunCheck`; :func:`run_checker` picks one.
Python's ``bz2`` decodes ~20 % slower per core than ``lbzip2``, and a large
file spends nearly all its check in decoding, so one ``lbzip2 -dc -n1`` per
run (the shared pool bounds how many run at once) pays on every core.

The bomb defence stays exact: the child's output is counted against the
shared budget as it is read, and the child is killed once the budget is
spent, so the refusal is the one the ``bz2`` path gives. Any other failure
(a CRC error, a non-zero exit) is reported like a failing run: the caller
then checks the file sequentially, which words the refusal as always.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator

from concentrador.protocol.bzip2 import DecompressionBudget
from concentrador.protocol.bzip2_segments import BlockRun, check_run

__all__ = ["RunCheck", "check_run_lbzip2", "run_checker"]

RunCheck = Callable[[BlockRun, DecompressionBudget], str | None]
"""Decompresses a run (output discarded, counted in the budget); None when clean."""

_CHUNK = 1 << 20  # read from the child at most this much at a time


def run_checker() -> RunCheck:
    """``lbzip2`` when it is on the PATH, else Python's ``bz2``."""
    executable = shutil.which("lbzip2")
    if executable is None:
        return check_run
    return functools.partial(check_run_lbzip2, executable)


def check_run_lbzip2(executable: str, run: BlockRun, budget: DecompressionBudget) -> str | None:
    """``check_run`` by one ``lbzip2 -dc -n1`` process."""
    if budget.exceeded:
        return budget.refusal()
    with _memory_file(run.to_stream()) as stdin:
        process = subprocess.Popen(
            [executable, "-dc", "-n1"],
            stdin=stdin,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            bufsize=0,
        )
    assert process.stdout is not None and process.stderr is not None
    try:
        with contextlib.suppress(OSError):  # fewer wake-ups; the default 64 kB also works
            fcntl.fcntl(process.stdout.fileno(), fcntl.F_SETPIPE_SZ, _CHUNK)
        while chunk := process.stdout.read(_CHUNK):
            if not budget.spend(len(chunk)):
                return budget.refusal()
        complaint = process.stderr.read().decode(errors="replace").strip()
        code = process.wait()
    finally:
        if process.returncode is None:
            process.kill()  # over the budget: not one byte more
            process.wait()
        process.stdout.close()
        process.stderr.close()
    if code != 0:
        return f"lbzip2 exited with {code}: {complaint or 'no message'}"
    return None


@contextlib.contextmanager
def _memory_file(data: bytes) -> Iterator[int]:
    """A descriptor reading ``data`` from its start: the child's stdin, so no
    thread has to feed a pipe while this one drains the output."""
    if hasattr(os, "memfd_create"):
        fd = os.memfd_create("bzip2-run", os.MFD_CLOEXEC)
    else:
        with tempfile.TemporaryFile() as unnamed:
            fd = os.dup(unnamed.fileno())
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.lseek(fd, 0, os.SEEK_SET)
        yield fd
    finally:
        os.close(fd)

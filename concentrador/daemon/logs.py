"""Logging to stderr, shaped for journald and for a terminal.

Under systemd (``$JOURNAL_STREAM`` or ``$INVOCATION_ID`` set) journald
stamps every line itself, so we print no timestamp, and we prefix each line
with the syslog priority ``<N>`` that journald turns into the entry's
priority (so ``journalctl -p warning`` works). On a terminal, lines carry a
timestamp and the level name instead.

Every record becomes exactly one line: embedded newlines (a multi-line peer
error, a traceback) are folded, because journald and grep both treat a line
as one event and a stray continuation line would look like a new one.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Mapping
from typing import TextIO

__all__ = [
    "JournalFormatter",
    "TerminalFormatter",
    "running_under_journald",
    "setup_logging",
    "syslog_priority",
]

# A separator that cannot be mistaken for message text, to keep the folded
# lines of a traceback readable.
_FOLD = " ⏎ "

# Names of our handler, so setup_logging() can be called again (tests, a
# reload) without stacking duplicate handlers.
_HANDLER_NAME = "concentrador-stderr"


def running_under_journald(environ: Mapping[str, str] | None = None) -> bool:
    """True when stderr goes to journald (systemd sets these for services)."""
    env = os.environ if environ is None else environ
    return bool(env.get("JOURNAL_STREAM") or env.get("INVOCATION_ID"))


def syslog_priority(levelno: int) -> int:
    """The syslog priority of a logging level (sd-daemon(3) ``<N>`` prefixes)."""
    if levelno >= logging.CRITICAL:
        return 2  # crit
    if levelno >= logging.ERROR:
        return 3  # err
    if levelno >= logging.WARNING:
        return 4  # warning
    if levelno >= logging.INFO:
        return 6  # info
    return 7  # debug


def _one_line(text: str) -> str:
    return _FOLD.join(part for part in text.splitlines() if part.strip()) if text else text


class _OneLineFormatter(logging.Formatter):
    """Formats message + exception + stack into one line."""

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        extra = []
        # Cache like the base class does, so other handlers reuse it.
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            extra.append(record.exc_text)
        if record.stack_info:
            extra.append(self.formatStack(record.stack_info))
        text = _one_line("\n".join([message, *extra]))
        return self.decorate(record, text)

    def decorate(self, record: logging.LogRecord, text: str) -> str:
        raise NotImplementedError


class JournalFormatter(_OneLineFormatter):
    """``<N>logger: message``: no timestamp, journald adds its own."""

    def decorate(self, record: logging.LogRecord, text: str) -> str:
        return f"<{syslog_priority(record.levelno)}>{record.name}: {text}"


class TerminalFormatter(_OneLineFormatter):
    """``2025-01-31 12:00:00,123 WARNING logger: message``."""

    def decorate(self, record: logging.LogRecord, text: str) -> str:
        return f"{self.formatTime(record)} {record.levelname} {record.name}: {text}"


def setup_logging(
    verbose: bool = False,
    *,
    stream: TextIO | None = None,
    environ: Mapping[str, str] | None = None,
) -> logging.Handler:
    """Send every log record to ``stream`` (stderr) in the right shape.

    Idempotent: a second call replaces the handler of the first. Returns the
    handler (tests attach to it). aiohttp's access log is kept at WARNING:
    one line per request would drown the events an operator cares about.
    """
    handler = logging.StreamHandler(sys.stderr if stream is None else stream)
    handler.set_name(_HANDLER_NAME)
    if running_under_journald(environ):
        handler.setFormatter(JournalFormatter())
    else:
        handler.setFormatter(TerminalFormatter())
    root = logging.getLogger()
    for old in [h for h in root.handlers if h.get_name() == _HANDLER_NAME]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    logging.getLogger("aiohttp.access").setLevel(logging.DEBUG if verbose else logging.WARNING)
    # APScheduler logs every job run at INFO; that is noise every few seconds.
    logging.getLogger("apscheduler").setLevel(logging.DEBUG if verbose else logging.WARNING)
    logging.getLogger("watchdog").setLevel(logging.WARNING)
    return handler

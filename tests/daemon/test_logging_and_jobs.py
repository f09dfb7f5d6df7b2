"""Journald-friendly log lines, and the coalescing job runner."""

from __future__ import annotations

import asyncio
import io
import logging
import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from hypothesis import given
from hypothesis import strategies as st

from concentrador.daemon.jobs import CoalescingRunner
from concentrador.daemon.logs import setup_logging, syslog_priority


@pytest.fixture
def restore_root_logging():
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def _emit(environ: dict[str, str], level: int, message: str, *, exc: bool = False) -> str:
    stream = io.StringIO()
    setup_logging(stream=stream, environ=environ)
    log = logging.getLogger("concentrador.test")
    if exc:
        try:
            raise ValueError("boom\nsecond line")
        except ValueError:
            log.exception(message)
    else:
        log.log(level, message)
    return stream.getvalue()


@pytest.mark.parametrize("variable", ["JOURNAL_STREAM", "INVOCATION_ID"])
def test_under_journald_priority_prefix_and_no_timestamp(restore_root_logging, variable) -> None:
    out = _emit({variable: "x"}, logging.WARNING, "peer CREC is slow")
    assert out == "<4>concentrador.test: peer CREC is slow\n"


def test_on_a_terminal_timestamp_and_level(restore_root_logging) -> None:
    out = _emit({}, logging.ERROR, "disk full")
    assert re.fullmatch(
        r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} ERROR concentrador.test: disk full\n", out
    )


def test_tracebacks_are_folded_into_one_line(restore_root_logging) -> None:
    out = _emit({"INVOCATION_ID": "x"}, logging.ERROR, "pass failed", exc=True)
    assert out.count("\n") == 1
    assert out.startswith("<3>concentrador.test: pass failed ⏎ Traceback")
    assert "ValueError: boom ⏎ second line" in out


@given(st.text(min_size=0, max_size=200))
def test_any_message_is_one_line(message: str) -> None:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    try:
        out = _emit({"INVOCATION_ID": "x"}, logging.INFO, message)
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
    assert out.endswith("\n") and out.count("\n") == 1
    assert out.startswith("<6>concentrador.test: ")
    assert "\r" not in out[:-1] and "\x85" not in out and "\u2028" not in out


def test_syslog_priorities() -> None:
    levels = [logging.DEBUG, logging.INFO, logging.WARNING, logging.ERROR, logging.CRITICAL]
    assert [syslog_priority(level) for level in levels] == [7, 6, 4, 3, 2]


def test_setup_logging_twice_does_not_duplicate(restore_root_logging) -> None:
    stream = io.StringIO()
    setup_logging(stream=stream, environ={"INVOCATION_ID": "x"})
    setup_logging(stream=stream, environ={"INVOCATION_ID": "x"})
    logging.getLogger("concentrador.test").warning("once")
    assert stream.getvalue() == "<4>concentrador.test: once\n"


async def test_runner_coalesces_a_burst_and_never_overlaps() -> None:
    executor = ThreadPoolExecutor(4)
    runner = CoalescingRunner(executor, name="test")
    lock = threading.Lock()
    running = {"A": 0, "B": 0}
    overlap = []
    runs = {"A": 0, "B": 0}

    def work(key: str):
        def run() -> None:
            with lock:
                running[key] += 1
                overlap.append(running[key] > 1)
                runs[key] += 1
            time.sleep(0.1)
            with lock:
                running[key] -= 1

        return run

    runner.request("A", work("A"))
    runner.request("B", work("B"))
    await asyncio.sleep(0.02)  # both started
    for _ in range(50):  # a burst while A runs...
        runner.request("A", work("A"))
    await runner.wait_idle()
    await runner.close()
    executor.shutdown()
    # ... collapses into exactly one more pass of A; B ran alongside once.
    assert runs == {"A": 2, "B": 1}
    assert not any(overlap)


async def test_runner_debounces_and_survives_a_failing_pass() -> None:
    executor = ThreadPoolExecutor(2)
    runner = CoalescingRunner(executor, name="test")
    calls = []

    def failing() -> None:
        calls.append("fail")
        raise OSError("disk on fire")

    runner.request("A", failing)
    for _ in range(10):
        runner.request_later("A", 0.05, lambda: calls.append("late"))
    await asyncio.sleep(0.3)
    runner.request("A", lambda: calls.append("again"))
    await asyncio.sleep(0.1)
    await runner.close()
    executor.shutdown()
    assert calls == ["fail", "late", "again"]
    runner.request("A", lambda: calls.append("after close"))
    assert calls[-1] == "again" and not runner.busy

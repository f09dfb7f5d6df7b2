"""CommitLine: the publisher's commit thread."""

from __future__ import annotations

import threading

import pytest

from concentrador.spool.outbound.pipeline import CommitLine


def test_items_are_worked_on_in_order_in_another_thread() -> None:
    threads: set[int] = set()

    def work(item: int) -> int | None:
        threads.add(threading.get_ident())
        return None if item % 2 else item * 10

    with CommitLine(work, name="test-line") as line:
        for item in range(6):
            line.put(item)
    assert line.results == [0, 20, 40]
    assert threads and threading.get_ident() not in threads


def test_an_escaping_error_stops_the_line_and_reaches_the_caller() -> None:
    done: list[int] = []

    def work(item: int) -> int:
        if item == 1:
            raise KeyboardInterrupt("stop")
        done.append(item)
        return item

    line: CommitLine[int, int] = CommitLine(work, name="test-line")
    for item in range(3):
        line.put(item)
    with pytest.raises(KeyboardInterrupt):
        line.close()
    assert done == [0]

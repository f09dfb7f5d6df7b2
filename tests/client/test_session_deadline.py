"""The call deadline and the wire error mapping around every call of a session."""

from __future__ import annotations

import asyncio
import re
import ssl

import aiohttp
import pytest

from concentrador.client.deadline import call_deadline
from concentrador.client.errors import PeerConnectionError, PeerProtocolError
from concentrador.client.http import wire_errors


async def test_a_call_past_its_deadline_says_how_slow_it_was() -> None:
    with pytest.raises(PeerConnectionError) as caught:
        async with call_deadline("0086", "recogerFichero", 0.05, 1000) as deadline:
            deadline.advance(100)  # 0.1 s more allowed
            await asyncio.sleep(1)
    assert re.search(r"^0086: recogerFichero: too slow: 100 bytes in 0\.[12] s", str(caught.value))
    assert caught.value.__suppress_context__


async def test_bytes_moved_push_the_deadline_back() -> None:
    async with call_deadline("0086", "recogerFichero", 0.05, 1000) as deadline:
        deadline.advance(200)  # 0.25 s in all
        await asyncio.sleep(0.15)
    assert deadline.transferred == 200


async def test_a_timeout_that_is_not_the_deadline_passes_through() -> None:
    with pytest.raises(TimeoutError):
        async with call_deadline("0086", "confirmacionRecepcionFichero", 10, 1000):
            raise TimeoutError  # aiohttp's own sock_read, say: the caller reports it


async def test_other_errors_and_a_clean_exit_are_untouched() -> None:
    async with call_deadline("0086", "x", 10, 1000) as deadline:
        pass
    assert deadline.transferred == 0
    with pytest.raises(KeyError):
        async with call_deadline("0086", "x", 10, 1000):
            raise KeyError("mine")


@pytest.mark.parametrize(
    ("raised", "expected"),
    [
        (TimeoutError(), "0086: recogerFichero: timed out"),
        (OSError("Connection  reset\nby peer"), "recogerFichero: Connection reset by peer"),
        (ssl.SSLError(1, "bad record mac"), "recogerFichero:"),
        (aiohttp.ServerDisconnectedError(), "recogerFichero: Server disconnected"),
    ],
)
def test_wire_failures_become_connection_errors(raised: BaseException, expected: str) -> None:
    with pytest.raises(PeerConnectionError) as caught, wire_errors("0086", "recogerFichero"):
        raise raised
    assert expected in str(caught.value)


def test_our_own_errors_and_others_pass_through_wire_errors() -> None:
    own = PeerProtocolError("0086", "not a SOAP answer")
    with pytest.raises(PeerProtocolError) as caught, wire_errors("0086", "op"):
        raise own
    assert caught.value is own
    with pytest.raises(ValueError, match="bug"), wire_errors("0086", "op"):
        raise ValueError("bug")
    with wire_errors("0086", "op"):
        pass


async def test_bytes_moved_after_the_first_deadline_still_push_it_back() -> None:
    # The timer is lazy: it fires at the deadline it was armed for, sees the
    # bytes moved since, and waits on; only a deadline that did not move expires.
    async with call_deadline("0086", "recogerFichero", 0.05, 1000) as deadline:
        for _ in range(4):
            await asyncio.sleep(0.04)
            deadline.advance(50)  # each read allows 0.05 s more
    assert deadline.transferred == 200
    with pytest.raises(PeerConnectionError, match="too slow: 50 bytes"):
        async with call_deadline("0086", "recogerFichero", 0.05, 1000) as deadline:
            await asyncio.sleep(0.04)
            deadline.advance(50)
            await asyncio.sleep(1)


async def test_no_timer_is_left_behind_after_a_call() -> None:
    loop = asyncio.get_running_loop()
    before = len(loop._scheduled)  # type: ignore[attr-defined]
    async with call_deadline("0086", "x", 10, 1000) as deadline:
        deadline.advance(10)
    assert all(h.cancelled() for h in loop._scheduled[before:])  # type: ignore[attr-defined]

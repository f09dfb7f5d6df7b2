"""Raw bytes over real mutual TLS to a test server, with the time it took."""

from __future__ import annotations

import asyncio
import re
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

from concentrador.pki import DevPki
from tests.server.conftest import Node, client_context


@dataclass
class Exchange:
    answer: bytes
    seconds: float
    """From the last byte sent to the server's close (or to giving up)."""
    closed: bool
    """The server closed the connection (else we gave up after ``wait``)."""

    def answers(self) -> list[bytes]:
        """The status lines of the answers, in order (each delimited by its Content-Length)."""
        lines = []
        rest = self.answer
        while rest:
            head, separator, rest = rest.partition(b"\r\n\r\n")
            assert separator, f"incomplete answer head {head[:200]!r}"
            lines.append(head.split(b"\r\n")[0])
            match = re.search(rb"\r\ncontent-length: *(\d+)", head, re.IGNORECASE)
            assert match, f"answer without Content-Length {head[:200]!r}"
            rest = rest[int(match[1]) :]
        return lines


async def exchange(
    node: Node, pki: DevPki, data: bytes, *, wait: float = 3.0, stem: str = "CREC-client"
) -> Exchange:
    """Send ``data`` in one write, read until the server closes (at most ``wait`` s)."""
    port = urlsplit(node.url).port
    reader, writer = await asyncio.open_connection(
        "127.0.0.1", port, ssl=client_context(pki, stem), server_hostname="localhost"
    )
    writer.write(data)
    await writer.drain()
    started = time.monotonic()
    answer = b""
    closed = False
    try:
        while True:
            chunk = await asyncio.wait_for(reader.read(65536), wait)
            if not chunk:
                closed = True
                break
            answer += chunk
    except ConnectionResetError:
        closed = True
    except TimeoutError:
        pass
    seconds = time.monotonic() - started
    writer.close()
    return Exchange(answer, seconds, closed)

"""A scriptable 504 peer for client tests: canned answers built with the core's
builders and signed with its ``sign``, and misbehaviour on demand (a tampered
payload, another party's key, no signature, bad base64, a fault per code).
Plain HTTP on loopback: what is under test is the client's handling of answers.
"""

from __future__ import annotations

import base64
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime

from aiohttp import web

from concentrador.protocol import SOAP11, parse_envelope
from concentrador.protocol.iec62325.envelope import build_504_envelope, message_from_body
from concentrador.protocol.iec62325.faults import fault_envelope
from concentrador.protocol.iec62325.models import (
    GetRequest,
    ListRequest,
    MessageListEntry,
    ReplyError,
)
from concentrador.protocol.iec62325.request import read_request_message
from concentrador.protocol.iec62325.response import (
    binary_get_response,
    message_list_response,
    server_time_response,
)
from concentrador.protocol.iec62325.signature import (
    PLACEHOLDER,
    SigningKey,
    canonical_parts,
    content_digest,
    sign,
)

__all__ = ["Fake504"]


@dataclass
class Fake504:
    key: SigningKey
    """Signs every answer (the peer's own key)."""
    files: dict[int, tuple[str, bytes]] = field(default_factory=dict)
    """code -> (name, bytes) listed and served."""
    other_key: SigningKey | None = None
    """Signs the answers to get of these codes instead (``wrong_signer``)."""
    wrong_signer: set[int] = field(default_factory=set)
    unsigned: set[int] = field(default_factory=set)
    tampered: set[int] = field(default_factory=set)
    """The base64 is changed after signing."""
    bad_base64: set[int] = field(default_factory=set)
    """Signed, but the content is not valid base64 (a lone quantum)."""
    faults: dict[int, str] = field(default_factory=dict)
    """code -> the error code answered to its get."""
    gets: Counter[int] = field(default_factory=Counter)

    def app(self) -> web.Application:
        app = web.Application(client_max_size=256 * 1024 * 1024)
        app.router.add_post("/{tail:.*}", self.handle)
        return app

    async def handle(self, request: web.Request) -> web.StreamResponse:
        envelope = parse_envelope(await request.read(), max_size=256 * 1024 * 1024)
        message = message_from_body(envelope.body_elements)
        assert message is not None
        parsed = read_request_message(message)
        now = datetime.now(UTC)
        if isinstance(parsed, ListRequest):
            entries = [
                MessageListEntry(code, name, "CUR", "0086", now, now)
                for code, (name, _) in sorted(self.files.items())
                if code > (parsed.after_code or 0)
            ]
            answer = message_list_response(entries, now)
            sign(answer, self.key)
            return self._send(build_504_envelope(answer, envelope.version))
        if isinstance(parsed, GetRequest):
            assert parsed.code is not None
            return self._get(parsed.code, now)
        answer = server_time_response(now)
        sign(answer, self.key)
        return self._send(build_504_envelope(answer, envelope.version))

    def _get(self, code: int, now: datetime) -> web.Response:
        self.gets[code] += 1
        if code in self.faults:
            error = ReplyError(self.faults[code], f"scripted fault for code {code}")
            return self._send(fault_envelope([error], SOAP11), status=500)
        name, data = self.files[code]
        content = base64.b64encode(data)
        if code in self.bad_base64:
            content += b"A"
        answer = binary_get_response(name, now)
        if code not in self.unsigned:
            before, after = canonical_parts(answer)
            key = self.other_key if code in self.wrong_signer else self.key
            assert key is not None
            sign(answer, key, content_digest(before, [content], after))
        if code in self.tampered:
            content = (b"B" if content[:1] != b"B" else b"C") + content[1:]
        prefix, _, suffix = build_504_envelope(answer, SOAP11).partition(PLACEHOLDER.encode())
        return self._send(prefix + content + suffix)

    @staticmethod
    def _send(body: bytes, status: int = 200) -> web.Response:
        return web.Response(body=body, status=status, content_type="text/xml", charset="utf-8")

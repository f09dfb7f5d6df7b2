"""Calling one IEC 62325-504 peer: list, get, put and query on one connection.

``async with Iec62325Session.open(config, peer, work_dir) as session``; then

* :meth:`~Iec62325Session.list_messages` ``(after_code)``: the peer's
  ``MessageList`` after a code;
* :meth:`~Iec62325Session.get_message` ``(code)``: the message streamed to a
  temp file of base64 in ``work_dir``, its signature checked per the peer's
  policy: a :class:`~.fetch.FetchedMessage` to decode into the spool;
* :meth:`~Iec62325Session.put_file` ``(name, paths)``: a signed binary put
  streamed from disk;
* :meth:`~Iec62325Session.server_time`: ``query`` of ``serverTimestamp``.

Every request carries our node id as header ``Source`` and is signed unless
the peer's ``signatures`` is ``off`` (see :mod:`.signatures`). Faults become
the client's error classes (:mod:`.faults`); network failures
:class:`~concentrador.client.errors.PeerConnectionError`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path

from lxml import etree

from concentrador.client.errors import PeerProtocolError
from concentrador.client.iec62325.faults import iec_fault_error, reply_failed_error
from concentrador.client.iec62325.fetch import (
    Base64File,
    FetchedMessage,
    PayloadRefused,
    stream_answer,
)
from concentrador.client.iec62325.signatures import Signatures
from concentrador.client.iec62325.transport import MAX_ANSWER, Transport
from concentrador.client.iec62325.upload import SignedUpload
from concentrador.client.session import wire_errors
from concentrador.config.model import Config, PeerConfig
from concentrador.protocol import ProtocolError, parse_envelope
from concentrador.protocol.iec62325.envelope import build_504_envelope, message_from_body
from concentrador.protocol.iec62325.faults import read_fault
from concentrador.protocol.iec62325.models import MessageListEntry, Response
from concentrador.protocol.iec62325.request import (
    get_request,
    list_request,
    put_binary_request,
    query_request,
)
from concentrador.protocol.iec62325.response import (
    read_message_list,
    read_response_message,
    read_server_time,
)
from concentrador.protocol.iec62325.wire import (
    MAX_FILE_SIZE,
    PLACEHOLDER,
    PayloadFormat,
    ReplyResult,
)

__all__ = ["Iec62325Session"]


class Iec62325Session:
    """One cycle's calls to one 504 peer (see the module docstring)."""

    def __init__(
        self,
        transport: Transport,
        signatures: Signatures,
        work_dir: Path,
        *,
        source: str | None,
    ) -> None:
        self.transport = transport
        self.signatures = signatures
        self.peer: PeerConfig = transport.peer
        self.work_dir = work_dir
        self.source = source

    @classmethod
    def open(cls, config: Config, peer: PeerConfig, work_dir: Path) -> Iec62325Session:
        """A session with the ``[client]`` TLS material and ``[signing]`` key of ``config``."""
        return cls(
            Transport.open(config, peer),
            Signatures.from_config(config, peer),
            work_dir,
            source=config.node.id,
        )

    async def __aenter__(self) -> Iec62325Session:
        await self.transport.__aenter__()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.transport.close()

    @property
    def calls(self) -> int:
        return self.transport.calls

    # -- the operations ----------------------------------------------------------------
    async def list_messages(self, after_code: int) -> list[MessageListEntry]:
        """The peer's messages with a code above ``after_code``, in code order."""
        message = list_request(after_code=after_code, source=self.source)
        answer, _ = await self._call("list", message, must_be_signed=False)
        if answer.payload is None:
            if not answer.has_payload:
                return []  # an empty list may come without a Payload
            raise PeerProtocolError(self.peer.id, "list: the answer holds no MessageList")
        try:
            entries = read_message_list(answer.payload)
        except ProtocolError as exc:
            raise PeerProtocolError(self.peer.id, f"list: {exc}") from None
        return sorted(entries, key=lambda entry: entry.code)

    async def server_time(self) -> datetime:
        """The peer's clock (UTC)."""
        answer, _ = await self._call("query", query_request(source=self.source))
        if answer.payload is None:
            raise PeerProtocolError(self.peer.id, "query: the answer has no QueryData payload")
        try:
            return read_server_time(answer.payload)
        except ProtocolError as exc:
            raise PeerProtocolError(self.peer.id, f"query: {exc}") from None

    async def put_file(
        self,
        name: str,
        paths: Sequence[Path],
        on_bytes: Callable[[int], None] | None = None,
    ) -> Response:
        """Put ``paths`` (one file, or its blocks in order) as the binary file ``name``."""
        operation = "put"
        message = put_binary_request(name, PayloadFormat.BINARY, source=self.source)
        upload = await asyncio.to_thread(
            SignedUpload.prepare, message, paths, self.signatures, self.transport.version
        )
        if upload.size > MAX_FILE_SIZE:
            raise ValueError(f"{name}: {upload.size} bytes, over the {MAX_FILE_SIZE}-byte limit")
        with wire_errors(self.peer.id, operation):
            async with self.transport.deadline(operation) as deadline:
                deadline.advance(upload.content_length)  # the upload's time, up front
                async with self.transport.post(
                    upload.body(on_bytes), content_length=upload.content_length
                ) as response:
                    body = await self.transport.read_whole(operation, response, deadline)
                    status = response.status
        answer, _ = await asyncio.to_thread(self._answer, operation, status, body, True)
        return answer

    async def get_message(
        self,
        code: int,
        on_bytes: Callable[[int], None] | None = None,
        *,
        name_hint: str | None = None,
    ) -> FetchedMessage:
        """Fetch message ``code``: streamed to ``work_dir``, signature checked.

        A binary answer is named by its ``Reply/ID``; an XML one by
        ``name_hint`` (the list's MessageIdentification) with ``.xml``.

        The caller decodes it (:meth:`FetchedMessage.decode_into`) and then
        :meth:`FetchedMessage.discard`\\ s it, whatever happens.
        """
        operation = "get"
        message = get_request(code=code, source=self.source)
        self.signatures.sign(message)
        envelope = build_504_envelope(message, self.transport.version)
        content = await asyncio.to_thread(Base64File, self.work_dir)
        try:
            with wire_errors(self.peer.id, operation):
                async with (
                    self.transport.deadline(operation) as deadline,
                    self.transport.post(envelope) as response,
                ):
                    self.transport.absorb_cookies(response)
                    xml = await stream_answer(
                        response,
                        content,
                        peer_id=self.peer.id,
                        operation=operation,
                        deadline=deadline,
                        on_bytes=on_bytes,
                    )
                    status = response.status
            answer, signer = await asyncio.to_thread(
                self._answer, operation, status, xml, True, content
            )
            return self._fetched(code, answer, signer, content, name_hint)
        except BaseException:
            await asyncio.to_thread(content.discard)
            raise

    # -- plumbing ---------------------------------------------------------------------
    async def _call(
        self, operation: str, message: etree._Element, *, must_be_signed: bool = True
    ) -> tuple[Response, str | None]:
        """A request with a small answer (list, query): post, read whole, check."""
        self.signatures.sign(message)
        envelope = build_504_envelope(message, self.transport.version)
        with wire_errors(self.peer.id, operation):
            async with (
                self.transport.deadline(operation) as deadline,
                self.transport.post(envelope) as response,
            ):
                body = await self.transport.read_whole(operation, response, deadline)
                status = response.status
        return await asyncio.to_thread(self._answer, operation, status, body, must_be_signed)

    def _answer(
        self,
        operation: str,
        status: int,
        xml: bytes,
        must_be_signed: bool,
        content: Base64File | None = None,
    ) -> tuple[Response, str | None]:
        """Parse an answer, raise its fault, check its signature (blocking)."""
        peer = self.peer.id
        try:
            envelope = parse_envelope(xml, max_size=MAX_ANSWER)
        except ProtocolError as exc:
            raise PeerProtocolError(
                peer, f"{operation}: HTTP {status}, not a SOAP answer: {exc}"
            ) from None
        if envelope.fault is not None:
            raise iec_fault_error(peer, operation, envelope.fault, read_fault(envelope))
        if status != 200:
            raise PeerProtocolError(peer, f"{operation}: HTTP {status} without a fault")
        try:
            message = message_from_body(envelope.body_elements)
        except ProtocolError as exc:
            raise PeerProtocolError(peer, f"{operation}: {exc}") from None
        if message is None:
            raise PeerProtocolError(peer, f"{operation}: the answer holds no ResponseMessage")
        chunks = content.chunks() if content is not None and content.size else ()
        certificate = self.signatures.check(
            operation, message, chunks, must_be_signed=must_be_signed
        )
        try:
            answer = read_response_message(message)
        except ProtocolError as exc:
            raise PeerProtocolError(peer, f"{operation}: {exc}") from None
        if answer.result == ReplyResult.FAILED:
            raise reply_failed_error(peer, operation, answer.errors)
        signer = certificate.subject.rfc4514_string() if certificate is not None else None
        return answer, signer

    def _fetched(
        self,
        code: int,
        answer: Response,
        signer: str | None,
        content: Base64File,
        name_hint: str | None,
    ) -> FetchedMessage:
        peer = self.peer.id
        xml_name = f"{name_hint or code}"
        if not xml_name.lower().endswith(".xml"):
            xml_name += ".xml"
        if answer.compressed is not None:
            if answer.compressed != PLACEHOLDER:  # the splitter always leaves it
                raise PeerProtocolError(peer, f"get code {code}: unexpected Compressed text")
            if answer.format not in (None, PayloadFormat.BINARY, PayloadFormat.XML):
                raise PayloadRefused(
                    peer, f"get code {code}: unsupported Format {answer.format!r} (GET-014)"
                )
            if answer.name is None and answer.format != PayloadFormat.XML:
                raise PayloadRefused(
                    peer, f"get code {code}: a binary answer without a file name (GET-018)"
                )
            name = answer.name or xml_name
            return FetchedMessage(peer, code, name, answer, content, signer)
        if answer.payload is None:
            raise PayloadRefused(peer, f"get code {code}: the answer has no payload (HAND-011)")
        content.discard()
        return FetchedMessage(peer, code, answer.name or xml_name, answer, None, signer)

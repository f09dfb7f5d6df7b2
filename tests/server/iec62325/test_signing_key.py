"""Our signing key: loaded once per configuration, reloaded with a new one, clear when broken."""

from __future__ import annotations

import dataclasses

from concentrador.config.model import SigningConfig
from concentrador.protocol.iec62325 import query_request
from tests.server.iec62325.conftest import body_of, call, url_504


async def test_key_is_loaded_once_and_again_after_a_reload(start_504, pki) -> None:
    node = await start_504()
    state = node.state
    first = state.signing_key()
    assert first is not None and state.signing_key() is first
    # What SIGHUP does (daemon/serve.py): a new Config object replaces the old one.
    other = SigningConfig(pki.directory / "CREC-client.pem", pki.directory / "CREC-client.key")
    state.config = dataclasses.replace(state.config, signing=other)
    second = state.signing_key()
    assert second is not first and second.certificate != first.certificate


async def test_a_broken_key_is_a_server_fault(start_504, crec, pki) -> None:
    node = await start_504()
    wrong = SigningConfig(pki.directory / "client.pem", pki.directory / "CREC-client.key")
    node.state.config = dataclasses.replace(node.state.config, signing=wrong)
    answer = await call(crec, url_504(node), body_of(query_request()))
    assert answer.status == 500 and answer.code == "HAND-009"
    assert b"soapenv:Server" in answer.raw

"""The DN cache of ``identity.py`` caches DER -> DN parsing only: which peer
a DN belongs to always comes from the *current* config, so a reload that
unmaps a certificate refuses it at once, even on a kept-alive connection."""

from __future__ import annotations

from dataclasses import replace

import pytest

from concentrador.config.dn import dn_from_der, parse_dn
from concentrador.pki import DevPki
from concentrador.protocol.messages import PeticionFechaHora
from concentrador.server import identity
from concentrador.server.identity import AuthenticationError, peer_from_certificate
from tests.server.conftest import Node, load_der, make_config, soap_call

STRANGER_DN = parse_dn("CN=someone-else,OU=Concentradores,O=REE,C=es")


def test_cached_der_is_mapped_through_each_new_config(pki: DevPki, tmp_path) -> None:
    der = load_der(pki.directory / "CREC-client.pem")
    crec_dn = dn_from_der(der)
    config = make_config(pki, tmp_path)
    assert peer_from_certificate(config, der).id == "CREC"
    hits = identity._subject_dn.cache_info().hits

    # Reloaded: CREC now has another certificate; ours maps to nobody.
    unmapped = make_config(pki, tmp_path, CREC={"dn": (STRANGER_DN,)})
    with pytest.raises(AuthenticationError, match="not registered"):
        peer_from_certificate(unmapped, der)
    # Reloaded again: the same certificate now belongs to OTRO.
    moved = make_config(pki, tmp_path, CREC={"dn": (STRANGER_DN,)}, OTRO={"dn": (crec_dn,)})
    assert peer_from_certificate(moved, der).id == "OTRO"
    assert peer_from_certificate(config, der).id == "CREC"

    # Those answers came from the cached DN, not from parsing afresh.
    assert identity._subject_dn.cache_info().hits == hits + 3


def test_unreadable_certificate_is_refused_every_time(pki: DevPki, tmp_path) -> None:
    config = make_config(pki, tmp_path)
    for _ in range(2):  # a failed parse is not cached as a DN
        with pytest.raises(AuthenticationError, match="cannot be read"):
            peer_from_certificate(config, b"\x30\x03not a certificate")


async def test_reload_that_unmaps_a_dn_refuses_the_kept_alive_peer(
    node: Node, crec, pki: DevPki
) -> None:
    call = PeticionFechaHora().to_xml()
    assert (await soap_call(crec, node.url, call)).status == 200
    before = node.state.config
    spool_root = before.node.spool

    node.state.config = make_config(pki, spool_root, CREC={"dn": (STRANGER_DN,)})
    refused = await soap_call(crec, node.url, call)  # same session, same certificate
    assert refused.status == 500
    assert refused.fault_code == "Client.Autenticacion"

    node.state.config = replace(before)
    assert (await soap_call(crec, node.url, call)).status == 200

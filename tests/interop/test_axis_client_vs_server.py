"""A real Apache Axis 1.4 client against our running server, over mutual TLS.

``concentrador serve`` runs as a subprocess with a dev PKI; the Java program
``AxisCpcsccScript`` drives Debian's Axis 1.4 client with JSSE keystores
converted from that PKI (``pki_java``) and calls all five operations. The
whole script runs in one JVM (module fixture); each test checks one case of
the issue against Axis's view of the answers *and* against what our server
holds on disk.

Axis's HTTP/1.0 Content-Length bug (CPCSCC.md §10): our server tolerates
it (``concentrador.server.axis.runner``): the 1.5 MiB HTTP/1.0 push is
stored byte for byte with code 0, and the server logs one warning naming the
bug. ``test_axis_content_length_bug_*`` pin that.
"""

from __future__ import annotations

import bz2
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from tests.interop.axis import AxisToolchain
from tests.interop.conftest import (
    LiveConcentrador,
    free_port,
    incompressible_bzip2,
    md5_of,
    po1011_text,
    publish_outbox_now,
    serve_concentrador,
)
from tests.interop.pki_java import java_tls, keystore_entry_types

pytestmark = pytest.mark.interop

MIB = 1024 * 1024
BLOCK_SIZE = 1_500_000  # blocks above 1 MiB, so Axis must read a 1.5 MB attachment
CREC_DN = "CN=crec-client-1,CN=CREC,OU=Concentradores,O=REE,C=es"
# CPCSCC.md §7 order, written out here rather than imported from the code under test.
ALL_TYPES = [
    "CUR", "PTE", "PTF", "TAR", "INC", "OBJ", "ROB", "FIR", "AGR", "MAG",
    "INV", "DIS", "RIS", "NOS", "OSI", "OSP", "OSA", "OSG", "OSE", "OSD",
]  # fmt: skip

SMALL = "F1_0086_20240601_20240602.0.bz2"
SPLIT = "P1_0086_20240601.0.bz2"
INCIDENT = "I1_0086_20240601.0.bz2"  # typed by its outbox/INC/ folder, not its prefix
PUSH_SMALL_HTTP10 = "F1_0086_20240701_20240702.1.bz2"
PUSH_SMALL_CHUNKED = "F1_0086_20240701_20240702.2.bz2"
PUSH_LARGE_CHUNKED = "P1_0086_20240701.1.bz2"
PUSH_LARGE_HTTP10 = "P1_0086_20240701.2.bz2"
PUSH_BAD_CHECKSUM = "F1_0086_20240701_20240702.3.bz2"


@dataclass(frozen=True)
class Inputs:
    small: bytes
    split: bytes
    incident: bytes
    push_small: bytes
    push_large: bytes
    push_small_path: Path
    push_large_path: Path


@dataclass(frozen=True)
class AxisRun:
    """Our live server, what it was given, and everything the Axis client printed."""

    server: LiveConcentrador
    spool: Path
    inputs: Inputs
    out: dict[str, list[str]]

    def value(self, key: str) -> str:
        values = self.out.get(key)
        assert values and len(values) == 1, f"{key}: {values!r} in {sorted(self.out)}"
        return values[0]

    def published(self, *, folder: str = "published") -> dict[str, bytes]:
        return {p.name: p.read_bytes() for p in (self.spool / "CREC" / folder).iterdir()}


def write_config(path: Path, pki: Path, spool: Path, port: int) -> Path:
    path.write_text(
        f'[node]\nid = "0086"\nspool = "{spool}"\ntimezone = "Europe/Madrid"\n'
        f"block_size = {BLOCK_SIZE}\n\n"
        f'[server]\nlisten = "127.0.0.1:{port}"\ncert = "{pki}/server.pem"\n'
        f'key = "{pki}/server.key"\nclient_ca = "{pki}/ca.pem"\ncrl = "{pki}/ca.crl"\n\n'
        '[admin]\nlisten = "127.0.0.1:0"\n\n'
        f'[[peers]]\nid = "CREC"\ndn = ["{CREC_DN}"]\n'
    )
    return path


def make_inputs(tmp: Path, outbox: Path) -> Inputs:
    inputs = Inputs(
        small=bz2.compress(po1011_text(400, seed=1)),
        split=incompressible_bzip2(3_200_000, seed=2),  # 3 blocks: 1.5 MB, 1.5 MB, ~0.2 MB
        incident=bz2.compress(po1011_text(30, seed=3)),
        push_small=bz2.compress(po1011_text(200, seed=4)),
        push_large=incompressible_bzip2(MIB + MIB // 2, seed=5),  # 2 chunked DIME records
        push_small_path=tmp / "push-small.bz2",
        push_large_path=tmp / "push-large.bz2",
    )
    (outbox / "INC").mkdir(parents=True)
    (outbox / SMALL).write_bytes(inputs.small)
    (outbox / SPLIT).write_bytes(inputs.split)
    (outbox / "INC" / INCIDENT).write_bytes(inputs.incident)
    inputs.push_small_path.write_bytes(inputs.push_small)
    inputs.push_large_path.write_bytes(inputs.push_large)
    return inputs


def script(inputs: Inputs) -> str:
    small_md5, large_md5 = md5_of(inputs.push_small), md5_of(inputs.push_large)
    small, large = inputs.push_small_path, inputs.push_large_path
    steps = [
        "fecha http10 fecha",
        "tod http10 informacion TOD",
        "mix http10 informacion TOD,CUR",
        "some chunked informacion CUR,INC,XYZ",
        f"get_small http10 recoger {SMALL}",
        f"get_block chunked recoger {SPLIT}.1_3",
        f"confirm http10 confirmar {SMALL} 0",
        f"confirm_block http10 confirmar {SPLIT}.2_3 0",
        "after http10 informacion CUR",
        f"get_confirmed http10 recoger {SMALL}",
        f"push_small_http10 http10 enviar {PUSH_SMALL_HTTP10} {small_md5} {small}",
        f"push_small_chunked chunked enviar {PUSH_SMALL_CHUNKED} {small_md5} {small}",
        f"push_large_chunked chunked enviar {PUSH_LARGE_CHUNKED} {large_md5} {large}",
        f"push_large_http10 http10 enviar {PUSH_LARGE_HTTP10} {large_md5} {large}",
        f"push_bad http10 enviar {PUSH_BAD_CHECKSUM} {'0' * 32} {small}",
    ]
    return "\n".join(steps) + "\n"


@pytest.fixture(scope="module")
def run(
    axis: AxisToolchain, dev_pki: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[AxisRun]:
    tmp = tmp_path_factory.mktemp("axis-vs-server")
    spool = tmp / "spool"
    port = free_port()
    config = write_config(tmp / "concentrador.toml", dev_pki, spool, port)
    inputs = make_inputs(tmp, spool / "CREC" / "outbox")
    publish_outbox_now(config)
    with serve_concentrador(config, port, dev_pki) as server:
        (tmp / "script.txt").write_text(script(inputs))
        out = axis.run(
            "AxisCpcsccScript",
            server.url,
            "CREC",
            str(tmp / "script.txt"),
            jvm_options=java_tls(dev_pki, "CREC-client").jvm_options(),
        )
        yield AxisRun(server, spool, inputs, out)


def test_dev_pki_stores_are_what_jsse_needs(axis: AxisToolchain, dev_pki: Path) -> None:
    keytool = str(Path(axis.java).with_name("keytool"))
    stores = java_tls(dev_pki, "CREC-client")
    assert keystore_entry_types(keytool, stores.keystore) == ["PrivateKeyEntry"]
    assert keystore_entry_types(keytool, stores.truststore) == ["trustedCertEntry"]


def test_peticion_fecha_hora(run: AxisRun) -> None:
    # DD/MM/YYYY hh:mm:ss in the node's zone (Europe/Madrid), close to now.
    answered = datetime.strptime(run.value("fecha.fechaHora"), "%d/%m/%Y %H:%M:%S")
    madrid = datetime.now(ZoneInfo("Europe/Madrid")).replace(tzinfo=None)
    assert abs((madrid - answered).total_seconds()) < 120


def test_informacion_tod_lists_every_type_and_the_published_files(run: AxisRun) -> None:
    assert run.out["tod.tipo"] == ALL_TYPES
    # What Axis saw is what the server holds in CREC/published, sizes in KiB rounded up.
    listed = {tuple(f.split("/")) for f in run.out["tod.file"]}
    blocks = [f"{SPLIT}.{k}_3" for k in (1, 2, 3)]
    sizes = {
        SMALL: len(run.inputs.small),
        INCIDENT: len(run.inputs.incident),
        blocks[0]: BLOCK_SIZE,
        blocks[1]: BLOCK_SIZE,
        blocks[2]: len(run.inputs.split) - 2 * BLOCK_SIZE,
    }
    types = {SMALL: "CUR", INCIDENT: "INC", **dict.fromkeys(blocks, "CUR")}
    assert listed == {(types[n], n, str(-(-size // 1024))) for n, size in sizes.items()}


def test_informacion_tod_mixed_with_a_type_is_the_client_tod_fault(run: AxisRun) -> None:
    assert run.value("mix.faultcode") == "Client.TOD"
    assert "mix.tipo" not in run.out


def test_informacion_some_types_over_http11_chunked(run: AxisRun) -> None:
    # An unknown id is answered as an empty type (decision in CPCSCC.md §4.2).
    assert run.out["some.tipo"] == ["CUR", "INC", "XYZ"]
    assert {f.split("/")[0] for f in run.out["some.file"]} == {"CUR", "INC"}


def test_recoger_small_file_axis_sees_the_right_bytes(run: AxisRun) -> None:
    assert len(run.inputs.small) < MIB
    assert run.value("get_small.nombre") == SMALL
    assert run.value("get_small.checksum") == md5_of(run.inputs.small)
    assert run.value("get_small.attachments") == "1"
    assert run.value("get_small.length") == str(len(run.inputs.small))
    assert run.value("get_small.md5") == md5_of(run.inputs.small)


def test_recoger_block_above_one_mib_axis_sees_the_right_bytes(run: AxisRun) -> None:
    block = run.inputs.split[:BLOCK_SIZE]
    assert len(block) > MIB
    assert run.value("get_block.nombre") == f"{SPLIT}.1_3"
    assert run.value("get_block.checksum") == md5_of(block)
    assert run.value("get_block.length") == str(BLOCK_SIZE)
    assert run.value("get_block.md5") == md5_of(block)


def test_confirmation_removes_the_file_from_listing_and_fetching(run: AxisRun) -> None:
    assert run.value("confirm.codigo") == "0"
    assert SMALL not in {f.split("/")[1] for f in run.out["after.file"]}
    assert run.value("get_confirmed.faultcode") == "Client.Fichero"
    # On disk: moved aside to delivered/, not deleted.
    assert run.published(folder="delivered")[SMALL] == run.inputs.small
    assert SMALL not in run.published()


def test_confirming_a_single_block_is_answered_1_and_changes_nothing(run: AxisRun) -> None:
    assert run.value("confirm_block.codigo") == "1"
    assert f"{SPLIT}.2_3" in {f.split("/")[1] for f in run.out["after.file"]}


@pytest.mark.parametrize(
    ("label", "name"),
    [("push_small_http10", PUSH_SMALL_HTTP10), ("push_small_chunked", PUSH_SMALL_CHUNKED)],
)
def test_enviar_small_file_is_stored(run: AxisRun, label: str, name: str) -> None:
    assert len(run.inputs.push_small) < MIB
    assert run.value(f"{label}.codigo") == "0"
    assert run.published(folder="inbox")[name] == run.inputs.push_small


def test_enviar_large_file_http11_chunked_is_stored(run: AxisRun) -> None:
    # Above 1 MiB Axis sends the attachment as chunked DIME records.
    assert len(run.inputs.push_large) > MIB
    assert run.value("push_large_chunked.codigo") == "0"
    assert run.published(folder="inbox")[PUSH_LARGE_CHUNKED] == run.inputs.push_large


def test_axis_content_length_bug_is_tolerated_and_the_file_stored(run: AxisRun) -> None:
    # HTTP/1.0 + chunked DIME records: Axis's Content-Length is 12 bytes short
    # (one continuation record), and the 12 bytes follow the declared body.
    assert len(run.inputs.push_large) > MIB
    assert "push_large_http10.faultcode" not in run.out
    assert run.value("push_large_http10.codigo") == "0"
    assert run.published(folder="inbox")[PUSH_LARGE_HTTP10] == run.inputs.push_large


def test_axis_content_length_bug_is_logged_once(run: AxisRun) -> None:
    warnings = [
        line
        for line in run.server.log_text().splitlines()
        if "tolerated the Axis 1.x DIME Content-Length bug" in line
    ]
    assert len(warnings) == 1, warnings  # only the HTTP/1.0 push over 1 MiB
    found = re.search(r"Content-Length (\d+), DIME message (\d+) bytes \(3 records\)", warnings[0])
    assert found is not None, warnings[0]
    assert int(found[2]) - int(found[1]) == 12


def test_enviar_bad_checksum_is_code_1_and_not_stored(run: AxisRun) -> None:
    assert run.value("push_bad.codigo") == "1"
    assert PUSH_BAD_CHECKSUM not in run.published(folder="inbox")


def test_unknown_dn_is_refused(axis: AxisToolchain, dev_pki: Path, run: AxisRun) -> None:
    # OTRO's certificate is valid (same CA) but its DN maps to no configured peer.
    script_path = run.server.config_path.with_name("otro.txt")
    script_path.write_text("fecha http10 fecha\nlist http10 informacion TOD\n")
    out = axis.run(
        "AxisCpcsccScript",
        run.server.url,
        "CREC",  # claiming to be CREC in the header does not help: the DN decides
        str(script_path),
        jvm_options=java_tls(dev_pki, "OTRO-client").jvm_options(),
    )
    assert out["fecha.faultcode"] == ["Client.Autenticacion"]
    assert out["list.faultcode"] == ["Client.Autenticacion"]
    assert "list.tipo" not in out

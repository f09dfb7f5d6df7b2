"""Shared set-up of the IEC 62325-504 benches (not a bench itself).

One daemon (``concentrador serve``) whose config has two peers: ``CREC``
speaking CPCSCC v2.3 (``server_bench.write_config``) and :data:`PEER504`
speaking IEC 62325-504 with signatures required (its requests are get and
list, which REE's client does not sign; our answers to get are signed with
the node's ``client.pem``, as REE's client wants). Both peers are given the
same published files (``server_bench.publish_directly``), so the two
profiles serve the same bytes from the same process.

Requests go through curl (mutual TLS as the peer's dev certificate, one
keep-alive connection per curl process), like ``server_bench.py``: the
client then costs the server nothing and its timing is curl's own.
"""

from __future__ import annotations

import base64
import hashlib
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from lxml import etree

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.server_bench import (  # noqa: E402
    PEER,
    curl_base,
    curl_post_args,
    free_port,
    publish_directly,
    start_daemon,
    write_config,
)
from concentrador.pki.devpki import init_dev_pki  # noqa: E402
from concentrador.protocol.iec62325 import (  # noqa: E402
    PLACEHOLDER,
    build_504_envelope,
    get_request,
    list_request,
    read_response_message,
)
from concentrador.protocol.iec62325.signature import verify  # noqa: E402
from concentrador.protocol.soap import SOAP11  # noqa: E402
from concentrador.spool.layout import Spool, SpoolState  # noqa: E402

PEER504 = "CNOR"
PATH = "/ServiceEME"
MSG = "http://iec.ch/TC57/2011/schema/message"


NEEDS_CURL = {"curl": "curl not found (apt-get install -y curl)"}


def dn_of(peer: str) -> str:
    """The subject of ``peer``'s dev client certificate (``devpki``'s naming)."""
    return f"CN={peer.lower()}-client-1,CN={peer},OU=Concentradores,O=REE,C=es"


def peer_504_toml(pki: Path) -> str:
    """``[signing]`` (our node's client certificate: clientAuth, as REE's client
    wants of a signer) and the 504 peer, to append to ``write_config``'s text."""
    return (
        f'\n[signing]\ncert = "{pki}/client.pem"\nkey = "{pki}/client.key"\n\n'
        f'[[peers]]\nid = "{PEER504}"\ndn = ["{dn_of(PEER504)}"]\n'
        'protocol = "iec62325-504"\nsignatures = "required"\n'
    )


@dataclass
class Bench504:
    """A prepared work folder: PKI, config, spool; :meth:`start` runs a daemon."""

    work: Path
    pki: Path
    port: int
    config: Path
    names: list[str]

    @classmethod
    def prepare(
        cls,
        work: Path,
        *,
        big_files: int,
        big_size: int,
        listing_files: int,
        peers: tuple[str, ...] = (PEER, PEER504),
    ) -> Bench504:
        """Folder, PKI, config and published files (for ``peers``); no daemon yet."""
        pki = work / "pki"
        init_dev_pki(pki, peers=[PEER, PEER504])
        port = free_port()
        config = write_config(work, pki, port, extra=peer_504_toml(pki))
        names = publish_directly(
            work / "spool",
            peers,
            big_files=big_files,
            big_size=big_size,
            listing_files=listing_files,
        )
        return cls(work, pki, port, config, names)

    def start(self) -> subprocess.Popen[bytes]:
        (self.work / "notify.sock").unlink(missing_ok=True)
        return start_daemon(self.config, self.work)

    @property
    def url(self) -> str:
        return f"https://localhost:{self.port}{PATH}"

    def envelope(self, label: str, message: etree._Element) -> Path:
        """``message`` (a RequestMessage) in a SOAP 1.1 envelope, written for curl."""
        path = self.work / f"{label}.xml"
        path.write_bytes(build_504_envelope(message, SOAP11))
        return path

    def get_envelope(self, name: str) -> Path:
        return self.envelope(f"get-{name}", get_request(message_identification=name))

    def list_envelope(self, after_code: int = 0) -> Path:
        return self.envelope(f"list-{after_code}", list_request(after_code=after_code))

    def curl_args(self, envelope: Path) -> list[str]:
        """curl POSTing ``envelope`` to the 504 endpoint as the 504 peer."""
        return [
            *curl_base(self.pki, PEER504),
            *curl_post_args(envelope),
            "-H",
            'SOAPAction: "#request"',
        ]


def stop(process: subprocess.Popen[bytes] | None) -> None:
    if process is not None and process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def check_get(bench: Bench504, name: str) -> None:
    """One 504 get, outside the timing: the file's bytes and our signature are right."""
    published = Spool(bench.work / "spool").peer(PEER504).dir(SpoolState.PUBLISHED)
    expected_md5 = hashlib.md5((published / name).read_bytes()).hexdigest()
    out = bench.work / "check-get.xml"
    subprocess.run(
        [*bench.curl_args(bench.get_envelope(name)), "-o", str(out), "--fail-with-body", bench.url],
        check=True,
    )
    root = etree.fromstring(out.read_bytes(), etree.XMLParser(huge_tree=True))
    out.unlink()
    message = next(root.iter(f"{{{MSG}}}ResponseMessage"))
    response = read_response_message(message)
    assert response.compressed is not None, "the get answer holds no Payload/Compressed"
    content = response.compressed.encode()
    if hashlib.md5(base64.b64decode(content)).hexdigest() != expected_md5:
        raise SystemExit(f"504 get of {name}: the decoded bytes differ from the published file")
    for element in message.iter(f"{{{MSG}}}Compressed"):
        element.text = PLACEHOLDER  # signed with the placeholder standing for the content
    verify(message, content=[content])

"""Our own independent IEC 62325-504 server and XMLDSig tools, in Java, for interop tests.

The Java sources in ``java/`` are ours (not REE's kit): a JAX-WS RI
``Provider<Source>`` endpoint (``EmeServer``/``EmeService``) on the JDK's
``HttpsServer`` with mutual TLS, and two command-line tools built on the JDK's
``javax.xml.crypto.dsig``: ``EmeVerify`` (check a signed message) and
``EmeSign`` (sign one). They give our Python signer, verifier, client and
server a counterpart that shares no code with them.

They compile with plain ``javac`` against Debian's JAX-WS RI
(``libjaxws-java`` and what it depends on); like the Axis tests, a missing
toolchain skips, except in CI (``CONCENTRADOR_REQUIRE_INTEROP=1``), where it fails.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import pkcs12

from tests.interop.axis import AxisToolchain, AxisUnavailable, JavaRunFailed, _tool
from tests.interop.pki_java import STORE_PASSWORD

JAVA_SOURCES = Path(__file__).parent / "java"
JAR_DIR = Path("/usr/share/java")
# jaxws-rt.jar's manifest Class-Path brings the rest of the RI (SAAJ impl,
# JAXB impl, stax-ex, streambuffer, ...); these are the ones the sources name
# directly, plus activation, which Java 11+ no longer ships.
REQUIRED_JARS = (
    "jaxws-rt.jar",
    "jaxws-api.jar",
    "jaxb-api.jar",
    "javax.xml.soap-api.jar",
    "geronimo-annotation-1.3-spec.jar",
    "javax.activation.jar",
    "saaj-impl.jar",
)
INSTALL_HINT = "apt-get install default-jdk-headless libjaxws-java libjaxws-api-java libjaxb-java"
STARTUP_TIMEOUT = 30.0
STOP_TIMEOUT = 15.0
SOAP11_PATH = "/ServiceEME"
SOAP12_PATH = "/ServiceEME12"


def find_jaxws_jars() -> list[Path]:
    """The JAX-WS RI jars, or AxisUnavailable naming the missing ones."""
    missing = [name for name in REQUIRED_JARS if not (JAR_DIR / name).is_file()]
    if missing:
        raise AxisUnavailable(f"missing jars {', '.join(missing)} in {JAR_DIR} ({INSTALL_HINT})")
    return [JAR_DIR / name for name in REQUIRED_JARS]


@dataclass(frozen=True)
class EmeJava:
    """The compiled Java tools; ``toolchain.run(...)`` parses ``key=value`` output."""

    toolchain: AxisToolchain

    def verify(self, *files: Path) -> dict[str, list[str]]:
        """Verify signed messages with the JDK; raises JavaRunFailed if any is invalid."""
        return self.toolchain.run("EmeVerify", *(str(f) for f in files))

    def verify_outcome(self, path: Path) -> tuple[bool, str]:
        """(valid, signer DN or the reason it is invalid), without raising."""
        command = self.toolchain.command("EmeVerify", str(path))
        done = subprocess.run(command, capture_output=True, text=True, timeout=60)
        values = dict(line.partition("=")[::2] for line in done.stdout.splitlines() if "=" in line)
        if done.returncode == 0:
            return True, values.get("signer", "")
        if done.returncode == 1:
            return False, values.get("reason", "")
        raise JavaRunFailed(f"EmeVerify {path} exited {done.returncode}: {done.stderr[-2000:]}")

    def sign(self, source: Path, target: Path, keystore: Path, *, soap: str = "1.1") -> Path:
        """Sign the message in ``source`` with the JDK; write a SOAP envelope to ``target``."""
        self.toolchain.run("EmeSign", str(source), str(target), str(keystore), STORE_PASSWORD, soap)
        return target


def build_eme_java(output_dir: Path) -> EmeJava:
    """Compile ``java/*.java`` into ``output_dir``; raises AxisUnavailable or JavaRunFailed."""
    javac = _tool("javac")
    java = _tool("java")
    jars = os.pathsep.join(str(jar) for jar in find_jaxws_jars())
    sources = sorted(str(path) for path in JAVA_SOURCES.glob("*.java"))
    command = [javac, "-nowarn", "-encoding", "UTF-8", "-d", str(output_dir), "-cp", jars]
    done = subprocess.run([*command, *sources], capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        raise JavaRunFailed(f"javac failed:\n{done.stdout}\n{done.stderr}")
    return EmeJava(AxisToolchain(java=java, classpath=os.pathsep.join([str(output_dir), jars])))


def pkcs12_from_pem(certificate_pem: Path, key_pem: Path, target: Path) -> Path:
    """A PKCS12 keystore (password ``changeit``) for a PEM pair outside the dev PKI.

    The dev PKI already writes ``<stem>.p12``; this is for keys made by a test
    (an untrusted signer, a rogue peer) that the Java side must use.
    """
    certificate = x509.load_pem_x509_certificate(certificate_pem.read_bytes())
    key = serialization.load_pem_private_key(key_pem.read_bytes(), password=None)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValueError(f"{key_pem}: only RSA keys are used by the 504 profile")
    encryption = (
        serialization.PrivateFormat.PKCS12.encryption_builder()
        .kdf_rounds(50000)
        .key_cert_algorithm(pkcs12.PBES.PBESv1SHA1And3KeyTripleDESCBC)
        .hmac_hash(hashes.SHA1())
        .build(STORE_PASSWORD.encode())
    )
    target.write_bytes(
        pkcs12.serialize_key_and_certificates(b"signer", key, certificate, None, encryption)
    )
    return target


@dataclass
class EmeJavaServer:
    """``EmeServer`` running as a subprocess (see ``java/EmeServer.java``).

    ``outbox``: put files here to publish them (a sub-folder name is their
    Type); ``inbox``: where accepted ``put``s land; ``dumps``: every signed
    ResponseMessage exactly as sent; ``events(key)``: what the server logged
    (``put``, ``get``, ``list``, ``signer``, ``fault``...).
    """

    port: int
    directory: Path
    outbox: Path
    inbox: Path
    dumps: Path
    log_path: Path
    process: subprocess.Popen[bytes] = field(repr=False)

    @property
    def url(self) -> str:
        """The SOAP 1.1 endpoint."""
        return f"https://localhost:{self.port}{SOAP11_PATH}"

    @property
    def url12(self) -> str:
        """The SOAP 1.2 endpoint (a JAX-WS endpoint has exactly one binding)."""
        return f"https://localhost:{self.port}{SOAP12_PATH}"

    def events(self, key: str) -> list[str]:
        values = []
        for line in self.log_path.read_text(errors="replace").splitlines():
            name, sep, value = line.partition("=")
            if sep and name == key:
                values.append(value)
        return values

    def publish(self, name: str, data: bytes, *, file_type: str | None = None) -> Path:
        """Publish a file (atomically: a hidden temp name, then rename)."""
        folder = self.outbox / file_type if file_type else self.outbox
        folder.mkdir(exist_ok=True)
        temp = folder / f".{name}.tmp"
        temp.write_bytes(data)
        return temp.replace(folder / name)

    def stderr(self) -> str:
        return self.log_path.with_suffix(".err").read_text(errors="replace")

    def stop(self) -> None:
        """SIGTERM (then SIGKILL); idempotent."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=STOP_TIMEOUT)

    def kill(self) -> None:
        """SIGKILL, for crash tests."""
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=STOP_TIMEOUT)


@contextlib.contextmanager
def start_eme_java_server(
    eme: EmeJava,
    pki: Path,
    directory: Path,
    *,
    port: int = 0,
    tls_stem: str = "server",
    signer: Path | str | None = "CREC-client",
    put_signature: str = "optional",
    owner: str = "CREC",
    default_type: str = "CUR",
) -> Iterator[EmeJavaServer]:
    """Start ``EmeServer`` on ``directory`` (outbox/, inbox/, dumps/, codes.tsv).

    ``signer``: a dev-PKI stem, a PKCS12 path, or None for unsigned responses.
    The default signs with CREC's *client* certificate: REE's client checks the
    response signer as a TLS client certificate, and the peer is CREC.
    ``put_signature``: ``required`` refuses unsigned puts (HAND-007); signed
    ones are always verified. Reusing ``directory`` and ``port`` after
    :meth:`EmeJavaServer.stop` restarts it with the same codes.
    """
    outbox, inbox, dumps = directory / "outbox", directory / "inbox", directory / "dumps"
    for folder in (outbox, inbox, dumps):
        folder.mkdir(parents=True, exist_ok=True)
    if signer is None:
        sign_keystore = "none"
    elif isinstance(signer, Path):
        sign_keystore = str(signer)
    else:
        sign_keystore = str(pki / f"{signer}.p12")
    args = [
        "--port", str(port),
        "--outbox", str(outbox),
        "--inbox", str(inbox),
        "--dump", str(dumps),
        "--state", str(directory / "codes.tsv"),
        "--tls-keystore", str(pki / f"{tls_stem}.p12"),
        "--truststore", str(pki / "ca.p12"),
        "--password", STORE_PASSWORD,
        "--sign-keystore", sign_keystore,
        "--put-signature", put_signature,
        "--owner", owner,
        "--default-type", default_type,
    ]  # fmt: skip
    log_path = directory / f"eme-server-{time.monotonic_ns()}.log"
    command = eme.toolchain.command("EmeServer", *args, jvm_options=())
    with log_path.open("wb") as log, log_path.with_suffix(".err").open("wb") as err:
        process = subprocess.Popen(command, stdout=log, stderr=err)
    server = EmeJavaServer(0, directory, outbox, inbox, dumps, log_path, process)
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while not (ready := server.events("ready")):
            if process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"EmeServer did not start:\n{server.stderr()[-4000:]}")
            time.sleep(0.05)
        server.port = int(ready[0])
        yield server
    finally:
        server.stop()


__all__ = [
    "EmeJava",
    "EmeJavaServer",
    "build_eme_java",
    "pkcs12_from_pem",
    "start_eme_java_server",
]

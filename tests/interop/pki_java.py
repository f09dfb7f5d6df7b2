"""JSSE keystores for the Java side of the interop tests, from our dev PKI.

``concentrador certs init DIR`` already writes what Java 17 reads directly:
``<stem>.p12`` (private key + certificate + CA chain) and ``ca.p12`` (the CA
as a trusted-certificate entry), all with the password ``changeit``. This
module turns them into the standard ``javax.net.ssl.*`` system properties,
and can ask ``keytool`` what a store holds, so a broken store fails with a
clear message instead of as an obscure handshake error inside Axis.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

from concentrador.pki.devpki import P12_PASSWORD

STORE_PASSWORD = P12_PASSWORD.decode()
TRUSTSTORE_NAME = "ca.p12"


class KeystoreError(AssertionError):
    """A dev-PKI store is missing or does not hold what JSSE needs."""


@dataclass(frozen=True)
class JavaTls:
    """A JSSE identity (keystore) and trust anchors (truststore)."""

    keystore: Path
    truststore: Path
    password: str = STORE_PASSWORD

    def jvm_options(self) -> tuple[str, ...]:
        """``-D`` options that make JSSE's default socket factories use these stores.

        Axis 1.4's ``JSSESocketFactory`` and a plain ``SSLServerSocketFactory``
        both use the defaults, so no Java code has to know about files.
        """
        return (
            f"-Djavax.net.ssl.keyStore={self.keystore}",
            "-Djavax.net.ssl.keyStoreType=PKCS12",
            f"-Djavax.net.ssl.keyStorePassword={self.password}",
            f"-Djavax.net.ssl.trustStore={self.truststore}",
            "-Djavax.net.ssl.trustStoreType=PKCS12",
            f"-Djavax.net.ssl.trustStorePassword={self.password}",
        )


def java_tls(pki_dir: Path, stem: str) -> JavaTls:
    """The stores for identity ``stem`` (``server``, ``client``, ``CREC-client``...)."""
    keystore = pki_dir / f"{stem}.p12"
    truststore = pki_dir / TRUSTSTORE_NAME
    for path in (keystore, truststore):
        if not path.is_file():
            raise KeystoreError(f"{path} missing: run `concentrador certs init {pki_dir}`")
    return JavaTls(keystore, truststore)


def keystore_entry_types(keytool: str, store: Path, password: str = STORE_PASSWORD) -> list[str]:
    """The entry types ``keytool -list`` reports, e.g. ``["PrivateKeyEntry"]``."""
    done = subprocess.run(
        [keytool, "-list", "-storetype", "PKCS12", "-keystore", str(store), "-storepass", password],
        capture_output=True,
        text=True,
        timeout=30,
    )
    if done.returncode != 0:
        raise KeystoreError(f"keytool cannot read {store}: {done.stdout}{done.stderr}".strip())
    kinds = ("PrivateKeyEntry", "trustedCertEntry", "SecretKeyEntry")
    return [kind for line in done.stdout.splitlines() for kind in kinds if f", {kind}," in line]

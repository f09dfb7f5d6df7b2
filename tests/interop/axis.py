"""Run the real Apache Axis 1.4 client (Debian's ``libaxis-java``) from tests.

Locates the JDK and the jars, compiles ``tests/interop/java/*.java`` once into
a directory the caller chooses, and runs a main class with a timeout.

When something is missing the tests skip with the reason, except in CI
(``CONCENTRADOR_REQUIRE_INTEROP=1``), where a missing toolchain must fail
loudly instead of silently turning the interop suite into a no-op.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

JAVA_SOURCES = Path(__file__).parent / "java"
# Debian's location; CONCENTRADOR_AXIS_JAR_DIRS (os.pathsep-separated) replaces
# it for other layouts, e.g. jars unpacked from the Axis 1.4 binary release.
DEFAULT_JAR_DIRS = (Path("/usr/share/java"),)
JAR_DIRS_ENV = "CONCENTRADOR_AXIS_JAR_DIRS"
# Axis silently turns attachments off when activation/mail are absent, so
# they are as required as axis.jar itself.
REQUIRED_JARS = (
    "axis.jar",
    "jaxrpc.jar",
    "saaj.jar",
    "commons-discovery.jar",
    "commons-logging.jar",
    "wsdl4j.jar",
    "javax.activation.jar",
    "javax.mail.jar",
)
INSTALL_HINT = "apt-get install default-jdk-headless libaxis-java libactivation-java libmail-java"
REQUIRE_ENV = "CONCENTRADOR_REQUIRE_INTEROP"
JAVA_TIMEOUT_SECONDS = 60.0
# Short-lived client JVMs: C1 only starts faster and these runs never get hot.
JVM_OPTIONS = ("-XX:TieredStopAtLevel=1", "-Xshare:auto", "-Xmx256m")


class AxisUnavailable(Exception):
    """The JDK or the Axis jars are not installed; the message says which."""


class JavaRunFailed(AssertionError):
    """A Java program exited non-zero or timed out (its output is in the message)."""


def interop_required() -> bool:
    """True in CI, where missing interop tooling is a failure, not a skip."""
    return os.environ.get(REQUIRE_ENV) == "1"


def _tool(name: str) -> str:
    java_home = os.environ.get("JAVA_HOME")
    if java_home:
        candidate = Path(java_home) / "bin" / name
        if candidate.is_file():
            return str(candidate)
    found = shutil.which(name)
    if found is None:
        raise AxisUnavailable(f"`{name}` not found on PATH or in $JAVA_HOME ({INSTALL_HINT})")
    return found


def find_axis_jars() -> list[Path]:
    """The classpath jars, in order; raises AxisUnavailable naming the missing ones."""
    configured = os.environ.get(JAR_DIRS_ENV)
    directories = (
        [Path(d) for d in configured.split(os.pathsep) if d] if configured else DEFAULT_JAR_DIRS
    )
    jars: list[Path] = []
    missing: list[str] = []
    for name in REQUIRED_JARS:
        for directory in directories:
            if (directory / name).is_file():
                jars.append(directory / name)
                break
        else:
            missing.append(name)
    if missing:
        where = os.pathsep.join(str(d) for d in directories)
        raise AxisUnavailable(f"missing jars {', '.join(missing)} in {where} ({INSTALL_HINT})")
    return jars


@dataclass(frozen=True)
class AxisToolchain:
    """A compiled copy of the Java sources plus everything needed to run them."""

    java: str
    classpath: str

    def command(self, main_class: str, *args: str, jvm_options: Sequence[str] = ()) -> list[str]:
        """The ``java`` command line for ``main_class`` (for long-running servers)."""
        return [self.java, *JVM_OPTIONS, *jvm_options, "-cp", self.classpath, main_class, *args]

    def run(
        self,
        main_class: str,
        *args: str,
        timeout: float = JAVA_TIMEOUT_SECONDS,
        jvm_options: Sequence[str] = (),
    ) -> dict[str, list[str]]:
        """Run ``main_class`` and parse its ``key=value`` stdout lines.

        Values are lists because a key may repeat (one line per attachment).
        ``jvm_options`` come before the class, e.g. ``-Djavax.net.ssl.*`` for TLS.
        """
        command = self.command(main_class, *args, jvm_options=jvm_options)
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired as exc:
            raise JavaRunFailed(f"{main_class} timed out after {timeout}s: {exc.stderr!r}") from exc
        if done.returncode != 0:
            raise JavaRunFailed(
                f"{main_class} exited {done.returncode}\n--- stdout\n{done.stdout}"
                f"\n--- stderr\n{done.stderr[-4000:]}"
            )
        values: dict[str, list[str]] = {}
        for line in done.stdout.splitlines():
            key, sep, value = line.partition("=")
            if sep:
                values.setdefault(key, []).append(value)
        return values


def build_toolchain(output_dir: Path) -> AxisToolchain:
    """Compile the Java sources into ``output_dir``; raises AxisUnavailable or JavaRunFailed."""
    javac = _tool("javac")
    java = _tool("java")
    jars = os.pathsep.join(str(jar) for jar in find_axis_jars())
    sources = sorted(str(path) for path in JAVA_SOURCES.glob("*.java"))
    command = [javac, "-nowarn", "-encoding", "UTF-8", "-d", str(output_dir), "-cp", jars]
    done = subprocess.run(
        [*command, *sources], capture_output=True, text=True, timeout=JAVA_TIMEOUT_SECONDS
    )
    if done.returncode != 0:
        raise JavaRunFailed(f"javac failed:\n{done.stdout}\n{done.stderr}")
    return AxisToolchain(java=java, classpath=os.pathsep.join([str(output_dir), jars]))

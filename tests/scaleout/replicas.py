"""A replicated deployment on loopback for the end-to-end scale-out tests and the bench.

``build_cluster`` lays out what ``docs/deploy.md`` describes, with real
processes: one dev PKI, N replicas of node ``0086`` (``concentrador serve``,
the same config but for the listen and admin ports) on ONE shared spool
folder and ONE PostgreSQL ledger, a real HAProxy in TCP mode in front of
them (mutual TLS passes through to the replica), and remote peers (``CREC``,
``0021``...) whose configs point at the HAProxy address. The processes are
:class:`tests.e2e.demo_nodes.Node` (the same launcher as the two-node demo
test); the remote peers drive the exchange with the one-shot CLI
(``concentrador collect 0086`` / ``push 0086``), as an operator would.
"""

from __future__ import annotations

import bz2
import dataclasses
import functools
import hashlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

from concentrador.config import model
from concentrador.pki.devpki import init_dev_pki
from tests.e2e.demo_nodes import Node, accepts_tls, free_ports
from tests.scaleout.haproxy import HAProxy

NODE_ID = "0086"
REMOTE_PEERS = ("CREC", "0021")
FIRST_DAY = date(2024, 1, 1)


def shared_spool_supported() -> bool:
    """Whether the config knows ``[spool] shared = true`` (polling watcher, per-replica work)."""
    spool_config = getattr(model, "SpoolConfig", None)
    return spool_config is not None and any(
        f.name == "shared" for f in dataclasses.fields(spool_config)
    )


def file_name(prefix: str, owner: str, index: int, *, suffix: str = "0") -> str:
    """A distinct, classifiable P.O. 10.11 name per index (the dates move, day by day)."""
    start = FIRST_DAY + timedelta(days=index)
    return f"{prefix}_{owner}_{start:%Y%m%d}_{start + timedelta(days=1):%Y%m%d}.{suffix}"


def content_for(name: str, size: int) -> bytes:
    """Small, compressible, distinct per name (a CSV-like measure file)."""
    line = f"{name};CUPS;20240101;1;2;3\n".encode()
    return (line * (size // len(line) + 1))[:size]


def md5_plain(path: Path) -> str:
    """MD5 of a file's content, bzip2-decompressed when it is a ``.bz2``."""
    data = path.read_bytes()
    if path.name.endswith(".bz2"):
        data = bz2.decompress(data)
    return hashlib.md5(data).hexdigest()


def plain_name(path: Path) -> str:
    return path.name.removesuffix(".bz2")


@dataclass
class Cluster:
    """Everything :func:`build_cluster` started or wrote."""

    root: Path
    certs: Path
    spool: Path
    pg_url: str
    replicas: list[Node]
    peers: dict[str, Node]
    proxy: HAProxy | None = None
    kills: list[tuple[int, float]] = field(default_factory=list)
    """(pid, time.time()) of every replica killed with SIGKILL."""

    def peer_spool(self, peer: str) -> Path:
        """``<shared spool>/<peer>``: what the replicas keep for a remote peer."""
        return self.spool / peer

    def start_replica(self, replica: Node, timeout: float = 30.0) -> None:
        replica.serve()
        wait_for(
            f"replica {replica.port} to accept TLS",
            functools.partial(accepts_replica, self, replica),
            timeout,
            self.diagnostics,
        )

    def kill_replica(self, replica: Node) -> None:
        """SIGKILL (no clean-up at all), and remember when: the cycle log check needs it."""
        assert replica.process is not None
        pid = replica.process.pid
        replica.process.kill()
        self.kills.append((pid, time.time()))
        replica.process.wait(10)
        replica._close_log()

    def stop_all(self) -> None:
        for node in [*self.replicas, *self.peers.values()]:
            node.kill()

    def diagnostics(self) -> str:
        parts = []
        for index, replica in enumerate(self.replicas):
            tail = "\n".join(replica.log_text().splitlines()[-20:])
            code = None if replica.process is None else replica.process.poll()
            parts.append(f"--- replica {index} (exit {code}):\n{tail}")
        return "\n".join(parts)


def wait_for(
    what: str,
    predicate: Callable[[], bool],
    timeout: float,
    diagnostics: Callable[[], str] = lambda: "",
) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}\n{diagnostics()}")
        time.sleep(0.05)


def accepts_replica(cluster: Cluster, replica: Node) -> bool:
    if replica.process is not None and replica.process.poll() is not None:
        raise AssertionError(f"replica on {replica.port} exited:\n{replica.log_text()[-3000:]}")
    # accepts_tls handshakes as the demo's peer of node "0086" (CREC): our peers too.
    return accepts_tls(replica)


def _toml_path(path: Path) -> str:
    return str(path).replace("\\", "\\\\")


def replica_config(cluster: Cluster, port: int, admin_port: int, subjects: dict[str, str]) -> str:
    certs = _toml_path(cluster.certs)
    spool_table = "[spool]\nshared = true\n\n" if shared_spool_supported() else ""
    peers = "".join(
        f'\n[[peers]]\nid = "{peer}"\ndn = ["{subjects[peer]}"]\ndeliver = "publish"\n'
        for peer in cluster.peers
    )
    return f"""\
# Replica of node {NODE_ID}: identical on every replica but for the two ports.
[node]
id = "{NODE_ID}"
spool = "{_toml_path(cluster.spool)}"
timezone = "Europe/Madrid"
block_size = {model.MIN_BLOCK_SIZE}

{spool_table}[server]
listen = "127.0.0.1:{port}"
cert = "{certs}/server.pem"
key = "{certs}/server.key"
client_ca = "{certs}/ca.pem"
crl = "{certs}/ca.crl"

[admin]
listen = "127.0.0.1:{admin_port}"

[ledger]
url = "{cluster.pg_url}"
{peers}"""


def peer_config(
    cluster: Cluster, peer: str, proxy_port: int, ports: Sequence[int], node_subject: str
) -> str:
    certs = _toml_path(cluster.certs)
    return f"""\
# Remote peer {peer}: collects from and pushes to node {NODE_ID} through HAProxy.
[node]
id = "{peer}"
spool = "spool"
timezone = "Europe/Madrid"
block_size = {model.MIN_BLOCK_SIZE}

[server]
listen = "127.0.0.1:{ports[0]}"
cert = "{certs}/server.pem"
key = "{certs}/server.key"
client_ca = "{certs}/ca.pem"

[admin]
listen = "127.0.0.1:{ports[1]}"

[client]
cert = "{certs}/{peer}-client.pem"
key = "{certs}/{peer}-client.key"
ca = "{certs}/ca.pem"
timeout = 20
# A killed replica is a connection error: try again at once, as often as needed.
retries = 1000
retry_delay = 0

[[peers]]
id = "{NODE_ID}"
dn = ["{node_subject}"]
url = "https://localhost:{proxy_port}/"
collect_types = ["TOD"]
deliver = "push"
"""


def build_cluster(
    root: Path,
    pg_url: str,
    start_haproxy: Callable[..., HAProxy],
    *,
    replicas: int = 2,
    peers: Sequence[str] = REMOTE_PEERS,
) -> Cluster:
    """Write the PKI and configs, start HAProxy and the replicas (not the peers' cycles)."""
    certs = root / "certs"
    pki = init_dev_pki(certs, node_id=NODE_ID, peers=list(peers))
    subjects = {peer: pki.by_role(f"peer {peer}").subject for peer in peers}
    cluster = Cluster(root, certs, root / "shared-spool", pg_url, [], {})
    ports = free_ports(2 * replicas + 2 * len(peers))
    for index in range(len(peers)):
        node = Node(peers[index], NODE_ID, root / f"peer-{peers[index]}", 0, certs)
        cluster.peers[peers[index]] = node
    for index in range(replicas):
        port, admin = ports[2 * index], ports[2 * index + 1]
        replica = Node(NODE_ID, peers[0], root / f"replica-{index}", port, certs, admin)
        replica.directory.mkdir(parents=True)
        replica.config.write_text(replica_config(cluster, port, admin, subjects))
        cluster.replicas.append(replica)
    cluster.proxy = start_haproxy([r.port for r in cluster.replicas])
    node_subject = pki.by_role("client").subject
    for index, node in enumerate(cluster.peers.values()):
        node.directory.mkdir(parents=True)
        own = ports[2 * replicas + 2 * index : 2 * replicas + 2 * index + 2]
        node.config.write_text(
            peer_config(cluster, node.node_id, cluster.proxy.port, own, node_subject)
        )
    try:
        for replica in cluster.replicas:
            replica.serve()
        for replica in cluster.replicas:
            wait_for(
                f"replica {replica.port} to accept TLS",
                functools.partial(accepts_replica, cluster, replica),
                30,
                cluster.diagnostics,
            )
    except BaseException:
        cluster.stop_all()
        raise
    return cluster


def write_atomically(folder: Path, name: str, data: bytes) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    temp = folder.parent / f".{name}.tmp"  # beside the folder, then renamed in
    temp.write_bytes(data)
    temp.rename(folder / name)


def names_in(folder: Path) -> list[str]:
    return sorted(plain_name(p) for p in folder.iterdir()) if folder.is_dir() else []


def stop_replicas_cleanly(cluster: Cluster) -> None:
    for replica in cluster.replicas:
        assert replica.terminate() == 0, cluster.diagnostics()
        errors = [line for line in replica.log_text().splitlines() if "Traceback" in line]
        assert errors == [], f"replica {replica.port} logged tracebacks:\n{cluster.diagnostics()}"

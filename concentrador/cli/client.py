"""``concentrador collect|push|ls|time|retry|republish|review PEER ...``: the one-shot commands.

Each is ``function(config, args) -> int`` as :mod:`concentrador.cli.program`
dispatches it. They use the same config, spool and ledger as the daemon and
take the same per-peer cycle locks, so they work with or without a running
daemon and never run a cycle twice at once. A failure is raised as
``CommandFailed`` (one line on stderr, non-zero exit).
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import sys
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from typing import TextIO, TypeVar

from concentrador.cli.errors import CommandFailed
from concentrador.client.collect import clock_offset_seconds
from concentrador.client.errors import ClientError
from concentrador.client.iec62325 import Iec62325Session
from concentrador.client.progress import Progress, progress_for
from concentrador.client.runner import ClientRunner
from concentrador.client.session import PeerSession
from concentrador.config.model import Config, PeerConfig
from concentrador.protocol import format_wire_datetime
from concentrador.spool.actions import ActionRefused, mark_reviewed, republish, retry_push
from concentrador.spool.claims import ClaimBusy, open_claims
from concentrador.spool.inbound.rebuilds import LocalRebuilds
from concentrador.spool.layout import Spool
from concentrador.spool.ledger import Ledger
from concentrador.spool.outbound.compress import detect_compressor
from concentrador.spool.outbound.publisher import Publisher
from concentrador.spool.workdirs import spool_for

__all__ = ["collect", "ls", "push", "republish_file", "retry", "review", "time"]

T = TypeVar("T")


def _peer(config: Config, args: argparse.Namespace, *, needs_url: bool = True) -> PeerConfig:
    peer = config.peer_by_id(args.peer)
    if peer is None:
        raise CommandFailed(f"unknown peer {args.peer!r}", exit_code=2)
    if needs_url and not peer.url:
        raise CommandFailed(f"peer {peer.id} has no url in the config: we never call it")
    if needs_url and config.client is None:
        raise CommandFailed("calling a peer needs a [client] section in the config")
    return peer


def _ledger(config: Config) -> Ledger:
    spool = Spool(config.node.spool)
    spool.ensure()
    return Ledger(spool.ledger_path, url=config.ledger.url, classifier=config.type_classifier())


def _run(work: Callable[[], Coroutine[object, None, T]]) -> T:
    try:
        return asyncio.run(work())
    except ClientError as exc:
        raise CommandFailed(str(exc)) from None


def _run_with_progress(work: Callable[[Progress], Coroutine[object, None, T]]) -> T:
    """:func:`_run` with the terminal progress display, closed whatever happens."""
    progress = progress_for()
    try:
        return _run(lambda: work(progress))
    finally:
        progress.close()


def collect(config: Config, args: argparse.Namespace, *, out: TextIO | None = None) -> int:
    """Run one collection cycle of ``args.peer`` now and print its summary."""
    peer = _peer(config, args)
    out = out or sys.stdout
    with _ledger(config) as ledger:
        # No daemon scheduling rebuilds here: the collected sets are rebuilt
        # in this process (under the same peer lock, so a daemon never races it).
        rebuild = LocalRebuilds(
            spool_for(config), ledger, config.peer_by_id, ledger_url=config.ledger.url
        )
        runner = ClientRunner(config, ledger, rebuild=rebuild)
        summary = _run_with_progress(lambda progress: runner.collect(peer.id, progress=progress))
    print(f"{peer.id}: {summary.line()}", file=out)
    return 0


def push(config: Config, args: argparse.Namespace, *, out: TextIO | None = None) -> int:
    """Publish the peer's outbox into ``sending/``, then run one push cycle."""
    peer = _peer(config, args)
    if peer.deliver != "push":
        raise CommandFailed(f'peer {peer.id} has deliver = "{peer.deliver}", not "push"')
    out = out or sys.stdout
    with _ledger(config) as ledger:
        published = _publish_outbox(config, peer, ledger)
        runner = ClientRunner(config, ledger)
        summary = _run_with_progress(lambda progress: runner.push(peer.id, progress=progress))
    print(f"{peer.id}: {published} file(s) taken from outbox/; {summary.line()}", file=out)
    return 1 if summary.failed else 0


def _publish_outbox(config: Config, peer: PeerConfig, ledger: Ledger) -> int:
    """The outbox pipeline (compress, split, move to ``sending/``), without settling.

    Under the peer's ``publish`` claim, like the daemon's publish pass (on any
    replica): when a daemon holds it, it is publishing this outbox right now,
    so we leave the outbox to it and push what is already in ``sending/``.
    """
    spool = Spool(config.node.spool)
    peer_spool = spool.peer(peer.id).ensure()
    claims = open_claims(spool, config.ledger.url, cycle_log=ledger, replica=config.node.replica)
    try:
        with claims.hold(peer.id, "publish"), detect_compressor() as compressor:
            publisher = Publisher(
                peer_spool,
                ledger,
                classifier=config.type_classifier(),
                block_size=config.node.block_size,
                deliver=peer.deliver,
                compressor=compressor,
                # The operator asked for it now: files they dropped are complete.
                settle_seconds=0,
            )
            return len(publisher.publish_pending())
    except ClaimBusy as exc:
        print(f"{peer.id}: outbox left to the daemon publishing it ({exc})", file=sys.stderr)
        return 0
    finally:
        claims.close()


def _iec_session(config: Config, peer: PeerConfig) -> Iec62325Session:
    """A 504 session for a one-shot command; a config problem is one line."""
    work_dir = spool_for(config).peer(peer.id).ensure().work_dir
    try:
        return Iec62325Session.open(config, peer, work_dir)
    except ValueError as exc:
        raise CommandFailed(f"{peer.id}: {exc}") from None


def _iec_ls(config: Config, peer: PeerConfig, types: tuple[str, ...], out: TextIO) -> int:
    """The 504 ``list`` of ``peer`` (everything it still lists) as a table."""

    async def listing() -> list[tuple[int, str, str, str]]:
        async with _iec_session(config, peer) as session:
            entries = await session.list_messages(0)
        return [
            (
                e.code,
                e.type,
                e.server_timestamp.isoformat(timespec="seconds"),
                e.message_identification,
            )
            for e in entries
            if "TOD" in types or e.type in types
        ]

    rows = _run(listing)
    print(f"{'CODE':>10} {'TYPE':<8} {'SERVER TIME':<25}  IDENTIFICATION", file=out)
    for code, tipo, when, name in rows:
        shown = name if name.isprintable() else ascii(name)
        tipo = tipo if tipo.isprintable() else ascii(tipo)
        print(f"{code:>10} {tipo:<8} {when:<25}  {shown}", file=out)
    print(f"{len(rows)} message(s)", file=out)
    return 0


def ls(config: Config, args: argparse.Namespace, *, out: TextIO | None = None) -> int:
    """informacionDisponible of ``args.peer`` as a table (TYPE, SIZE KB, NAME);
    for an IEC 62325-504 peer its ``list`` (CODE, TYPE, SERVER TIME, IDENTIFICATION)."""
    peer = _peer(config, args)
    out = out or sys.stdout
    types = tuple(getattr(args, "types", None) or peer.collect_types)
    if peer.iec62325:
        return _iec_ls(config, peer, types, out)

    async def listing() -> list[tuple[str, int, str]]:
        async with PeerSession.open(config, peer) as session:
            answer = await session.informacion_disponible(types)
        return [(tipo, datos.longitud_kb, datos.nombre) for tipo, datos in answer.files()]

    rows = _run(listing)
    print(f"{'TYPE':<5} {'SIZE KB':>10}  NAME", file=out)
    for tipo, size_kb, name in rows:
        # Names come from the peer: show them escaped, never raw control chars.
        shown = name if name.isprintable() else ascii(name)
        print(f"{tipo:<5} {size_kb:>10}  {shown}", file=out)
    print(f"{len(rows)} file(s)", file=out)
    return 0


def time(config: Config, args: argparse.Namespace, *, out: TextIO | None = None) -> int:
    """peticionFechaHora of ``args.peer`` and the offset against our clock."""
    peer = _peer(config, args)
    out = out or sys.stdout
    zone = config.node.timezone

    async def ask() -> tuple[datetime, datetime, datetime]:
        if peer.iec62325:  # query serverTimestamp: an aware UTC time
            async with _iec_session(config, peer) as iec:
                sent = datetime.now(UTC)
                peer_time = await iec.server_time()
                return peer_time, sent, datetime.now(UTC)
        async with PeerSession.open(config, peer) as session:
            sent = datetime.now(UTC)
            peer_time = await session.peticion_fecha_hora()
            return peer_time, sent, datetime.now(UTC)

    peer_time, sent, received = _run(ask)
    if peer_time.tzinfo is not None:
        offset = (peer_time - (sent + (received - sent) / 2)).total_seconds()
        peer_time = peer_time.astimezone(zone)
    else:
        offset = clock_offset_seconds(peer_time, sent, received, zone)
    ours = received.astimezone(zone)
    print(f"{peer.id}: {format_wire_datetime(peer_time)}", file=out)
    print(f"ours: {format_wire_datetime(ours)} ({zone.key})", file=out)
    warn = abs(offset) > config.node.clock_warn_seconds
    note = f"  WARNING: over {config.node.clock_warn_seconds} s" if warn else ""
    print(f"offset: {offset:+.0f} s (peer minus ours){note}", file=out)
    return 0


def _actor() -> str:
    """Who acts, for the file's audit trail: the CLI and the login name."""
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):  # no name for this uid (a container)
        return "cli"


def _act(config: Config, args: argparse.Namespace, action: Callable[..., T]) -> T:
    """Run a spool action on ``args.peer``/``args.name``; refusals become CommandFailed."""
    peer = _peer(config, args, needs_url=False)
    with _ledger(config) as ledger:
        try:
            return action(
                Spool(config.node.spool),
                ledger,
                peer.id,
                args.name,
                actor=_actor(),
                reason=getattr(args, "reason", None) or "",
            )
        except ActionRefused as exc:
            raise CommandFailed(str(exc)) from None


def retry(config: Config, args: argparse.Namespace, *, out: TextIO | None = None) -> int:
    """Move the failed file ``args.name`` of ``args.peer`` back to ``sending/``."""
    peer = _peer(config, args, needs_url=False)
    out = out or sys.stdout
    moved = _act(config, args, retry_push)
    print(
        f"{peer.id}: {len(moved)} file(s) back in sending/; the next push cycle sends them",
        file=out,
    )
    if peer.deliver != "push":
        print(f'note: {peer.id} has deliver = "{peer.deliver}"; no push cycle runs', file=out)
    return 0


def republish_file(config: Config, args: argparse.Namespace, *, out: TextIO | None = None) -> int:
    """Move the expired file ``args.name`` of ``args.peer`` back to ``published/``."""
    moved = _act(config, args, republish)
    print(f"{args.peer}: {len(moved)} file(s) published again", file=out or sys.stdout)
    return 0


def review(config: Config, args: argparse.Namespace, *, out: TextIO | None = None) -> int:
    """Note in the audit trail that the file ``args.name`` of ``args.peer`` was reviewed."""
    _act(config, args, mark_reviewed)
    print(f"{args.peer}: {args.name} marked as reviewed", file=out or sys.stdout)
    return 0

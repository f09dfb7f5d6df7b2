"""Can this name be published? The checks made before any byte is staged.

A published name must be a safe file name for the peer, must not look
like a block of another file (the peer would wait for the other blocks),
and must be new: a new file needs a new name (the next version number),
never a name this peer was already given.
"""

from __future__ import annotations

from collections.abc import Iterable

from concentrador.protocol import InvalidFileName, parse_block_name, validate_peer_filename
from concentrador.spool.layout import PeerSpool, SpoolState
from concentrador.spool.ledger import Ledger
from concentrador.spool.outbound.commit import BlockInfo

__all__ = ["block_names_problem", "published_name_problem"]


def published_name_problem(
    ledger: Ledger, peer_spool: PeerSpool, destination: SpoolState, published_name: str
) -> str | None:
    """Why ``published_name`` cannot be published to this peer, or None."""
    peer = peer_spool.peer
    try:
        validate_peer_filename(published_name)
    except InvalidFileName as exc:
        return f"its name cannot be published: {exc}"
    block = parse_block_name(published_name)
    if block is not None:
        return (
            f"{published_name!r} looks like block {block.index} of {block.count} of"
            f" {block.original!r}; a peer would wait for the other blocks. Rename it"
        )
    known = ledger.lookup(peer, published_name) or next(
        iter(ledger.entries_of(peer, published_name)), None
    )
    if known is not None:
        return (
            f"{published_name} was already published to {peer} on"
            f" {known.published_at:%Y-%m-%d %H:%M} UTC (now {known.state});"
            " a new file needs a new name (next version number)"
        )
    if (peer_spool.dir(destination) / published_name).exists():
        return f"{destination}/{published_name} already exists and is not in the ledger"
    return None


def block_names_problem(blocks: Iterable[tuple[str, BlockInfo]]) -> str | None:
    """Why one of the ``(part, block)`` names cannot be published, or None."""
    for _part, block in blocks:
        try:
            validate_peer_filename(block.name)
        except InvalidFileName as exc:
            return f"its block names cannot be published: {exc}"
    return None

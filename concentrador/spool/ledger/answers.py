"""The SQL of 504 get answer digests: computed once per published file, like its MD5.

The answer to a 504 ``get`` of a published file is the stored message
(docs/protocol.md): its Header Timestamp is the file's publication time and
its Source our node id, so the whole signed document but the SignatureValue
is a function of the file, and so is the reference digest of its signature
(SHA-256 of ``before`` + base64 of the file + ``after``, the canonical bytes
around the content). Stored here, it lets a get skip the digest pass.

A row is used only for the publication it was computed for (``published_at``
and ``md5``: a republished or replaced file never gets an old digest) and
only when the canonical ``before``/``after`` the server builds now hash to
the ones it was computed with: a change in our answer builders (an upgrade,
a new node id) makes the server fall back to computing it, never to a wrong
signature. Plain functions over a ``backend.Connection``, and the
:class:`~concentrador.spool.ledger.ledger.Ledger` methods as a mixin.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime

from concentrador.spool.ledger.backend import Connection, Database
from concentrador.spool.ledger.schema import from_text, to_text, utc_now

__all__ = [
    "AnswerDigest",
    "AnswerDigestMethods",
    "delete_stale",
    "part_hash",
    "select_digest",
    "upsert_digest",
]


def part_hash(part: bytes) -> str:
    """The hex SHA-256 a row keeps of a canonical part (``before`` or ``after``)."""
    return hashlib.sha256(part).hexdigest()


@dataclass(frozen=True, slots=True)
class AnswerDigest:
    """The content digest of the get answer of ``peer``'s ``name`` as published."""

    peer: str
    name: str
    published_at: datetime
    md5: str
    before_sha256: str
    after_sha256: str
    digest: bytes

    @classmethod
    def of(
        cls, peer: str, name: str, published_at: datetime, md5: str,
        before: bytes, after: bytes, digest: bytes,
    ) -> AnswerDigest:  # fmt: skip
        """The row for ``digest``, computed over ``before`` + content + ``after``."""
        if len(digest) != hashlib.sha256().digest_size:
            raise ValueError("an answer digest is a SHA-256 digest (32 bytes)")
        return cls(peer, name, published_at, md5, part_hash(before), part_hash(after), digest)

    def fits(self, before: bytes, after: bytes) -> bool:
        """Whether this digest was computed around exactly these canonical parts."""
        return self.before_sha256 == part_hash(before) and self.after_sha256 == part_hash(after)


def upsert_digest(conn: Connection, row: AnswerDigest) -> None:
    conn.execute(
        "INSERT INTO answer_digests (peer, name, published_at, md5, before_sha256,"
        " after_sha256, digest, computed_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
        " ON CONFLICT (peer, name) DO UPDATE SET published_at = excluded.published_at,"
        " md5 = excluded.md5, before_sha256 = excluded.before_sha256,"
        " after_sha256 = excluded.after_sha256, digest = excluded.digest,"
        " computed_at = excluded.computed_at",
        (row.peer, row.name, to_text(row.published_at), row.md5, row.before_sha256,
         row.after_sha256, row.digest.hex(), to_text(utc_now())),
    )  # fmt: skip


def select_digest(
    conn: Connection, peer: str, name: str, published_at: datetime, md5: str
) -> AnswerDigest | None:
    """The row of ``name`` if it was computed for this publication (else None)."""
    row = conn.execute(
        "SELECT published_at, md5, before_sha256, after_sha256, digest FROM answer_digests"
        " WHERE peer = ? AND name = ? AND published_at = ? AND md5 = ?",
        (peer, name, to_text(published_at), md5),
    ).fetchone()
    if row is None:
        return None
    return AnswerDigest(
        peer, name, from_text(row[0]), row[1], row[2], row[3], bytes.fromhex(row[4])
    )


def delete_stale(conn: Connection, peer: str) -> int:
    """Delete ``peer``'s rows whose publication is gone, replaced or re-published."""
    cursor = conn.execute(
        "DELETE FROM answer_digests WHERE peer = ? AND NOT EXISTS (SELECT 1 FROM published"
        " WHERE published.peer = answer_digests.peer AND published.name = answer_digests.name"
        " AND published.state = 'published' AND published.published_at ="
        " answer_digests.published_at AND published.md5 = answer_digests.md5)",
        (peer,),
    )
    return int(cursor.rowcount)


class AnswerDigestMethods:
    """The :class:`~concentrador.spool.ledger.ledger.Ledger` methods of answer digests.

    A base class of ``Ledger`` (as ``CycleLogMethods``): ``ledger.py`` is at its
    size limit, and these use nothing of it but its database.
    """

    _db: Database

    def answer_digest(
        self, peer: str, name: str, *, published_at: datetime, md5: str
    ) -> AnswerDigest | None:
        """The stored digest of ``name``'s get answer for this publication, if any.

        The caller still checks :meth:`AnswerDigest.fits` against the answer it builds.
        """
        with self._db.read() as conn:
            return select_digest(conn, peer, name, published_at, md5)

    def record_answer_digest(self, row: AnswerDigest) -> None:
        """Keep ``row`` (replacing any older one of the name).

        Not durable: a lost row only costs the next get one more pass.
        """
        with self._db.transaction(durable=False) as conn:
            upsert_digest(conn, row)

    def forget_stale_answer_digests(self, peer: str) -> int:
        """Delete ``peer``'s digests of files no longer published as they were."""
        with self._db.transaction(durable=False) as conn:
            return delete_stale(conn, peer)

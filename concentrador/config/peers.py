"""Reading and validating the ``[[peers]]`` entries of the config."""

from __future__ import annotations

import re
import string
import warnings
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from concentrador.config.checks import Checker, describe_type, identifier
from concentrador.config.dn import DistinguishedName, DNError, parse_dn
from concentrador.config.loadwindow import LoadWindow
from concentrador.config.model import (
    CPCSCC_23,
    IEC62325_504,
    PEER_PROTOCOLS,
    SIGNATURE_POLICIES,
    SOAP_VERSIONS,
    PeerConfig,
)
from concentrador.protocol.filetypes import REAL_TYPE_IDS, TOD

PEER_KEYS = (
    "id",
    "dn",
    "url",
    "collect",
    "collect_types",
    "deliver",
    "participants",
    "allowed_types",
    "load_window",
    "decompress",
    "soap_action",
    "header_must_match",
    "connections",
    "protocol",
    "signatures",
    "soap_version",
)
# Keys that only mean something for one profile. Setting one on a peer of the
# other profile is a problem, not a warning: it says the operator expects a
# behaviour that will not happen (e.g. a SOAPAction template for a 504 peer,
# whose SOAPAction is always "#request").
_ONLY_FOR = {
    "soap_action": CPCSCC_23,
    "signatures": IEC62325_504,
    "soap_version": IEC62325_504,
}
DELIVERY_MODES = ("publish", "push")
_PARTICIPANT = re.compile(r"^[A-Za-z0-9]{1,16}$")


def read_peers(
    checker: Checker, raw: object, timezone: ZoneInfo | None, *, has_client: bool
) -> tuple[PeerConfig, ...] | None:
    """All peers, or None when any has a problem (recorded in ``checker``)."""
    if not isinstance(raw, list) or not all(isinstance(item, dict) for item in raw):
        checker.problem("peers", f"expected [[peers]] tables, got {describe_type(raw)}")
        return None
    before = len(checker.problems)
    peers: list[PeerConfig] = []
    # Ids and DNs are gathered even from peers with other problems, so that
    # duplicates are reported in the same pass.
    ids: list[str | None] = []
    dn_lists: list[list[tuple[str, DistinguishedName]]] = []
    for index, item in enumerate(raw):
        peer, peer_id, dns = _peer(checker, item, f"peers[{index}]", timezone, has_client)
        ids.append(peer_id)
        dn_lists.append(dns)
        if peer is not None:
            peers.append(peer)
    _check_unique_ids(checker, ids)
    _check_unique_dns(checker, ids, dn_lists)
    return tuple(peers) if len(checker.problems) == before else None


def _peer(
    checker: Checker, raw: dict[str, Any], path: str, timezone: ZoneInfo | None, has_client: bool
) -> tuple[PeerConfig | None, str | None, list[tuple[str, DistinguishedName]]]:
    """The peer (None after any problem), and its id and DNs for cross-checks."""
    before = len(checker.problems)
    checker.table(raw, path, PEER_KEYS)
    peer_id = identifier(checker, f"{path}.id", checker.string(raw, "id", path), "peer id")
    dns = _dns(checker, raw, path)
    url = _url(checker, raw, path, has_client)
    collect = _cron(checker, raw, path, timezone)
    collect_types = _types(checker, raw, "collect_types", path, allow_all=True)
    deliver = checker.string(raw, "deliver", path, "publish")
    if deliver is not None and deliver not in DELIVERY_MODES:
        checker.problem(f"{path}.deliver", f'{deliver!r} is not "publish" or "push"')
    if collect is not None and url is None:
        checker.problem(f"{path}.collect", "needs the peer's url")
    if deliver == "push" and url is None:
        checker.problem(f"{path}.deliver", '"push" needs the peer\'s url')
    participants = _participants(checker, raw, path)
    allowed_types = _types(checker, raw, "allowed_types", path, allow_all=False)
    load_window = _load_window(checker, raw, path)
    decompress = checker.boolean(raw, "decompress", path, False)
    soap_action = _soap_action(checker, raw, path)
    header_must_match = checker.boolean(raw, "header_must_match", path, True)
    connections = checker.integer(raw, "connections", path, 1, minimum=1, maximum=16)
    protocol = _choice(checker, raw, "protocol", path, PEER_PROTOCOLS)
    signatures = _choice(checker, raw, "signatures", path, SIGNATURE_POLICIES)
    soap_version = _choice(checker, raw, "soap_version", path, SOAP_VERSIONS)
    if protocol is not None:
        _check_profile_keys(checker, raw, path, protocol)
    if len(checker.problems) > before:
        return None, peer_id, dns
    peer = PeerConfig(
        id=peer_id,  # type: ignore[arg-type]
        dn=tuple(dn for _, dn in dns),
        url=url,
        collect=collect,
        collect_types=tuple(collect_types or [TOD]),
        deliver=deliver,  # type: ignore[arg-type]
        participants=frozenset(participants),
        allowed_types=frozenset(allowed_types),
        load_window=load_window,
        decompress=bool(decompress),
        soap_action=soap_action,  # type: ignore[arg-type]
        header_must_match=bool(header_must_match),
        connections=connections or 1,
        protocol=protocol,  # type: ignore[arg-type]
        signatures=signatures,  # type: ignore[arg-type]
        soap_version=soap_version,  # type: ignore[arg-type]
    )
    return peer, peer_id, dns


def _choice(
    checker: Checker, table: dict[str, Any], key: str, path: str, allowed: tuple[str, ...]
) -> str | None:
    """One of ``allowed`` (the first is the default); None after a problem."""
    value = checker.string(table, key, path, allowed[0])
    if value is not None and value not in allowed:
        choices = ", ".join(f'"{choice}"' for choice in allowed)
        checker.problem(f"{path}.{key}", f"{value!r} is not one of {choices}")
        return None
    return value


def _check_profile_keys(checker: Checker, table: dict[str, Any], path: str, protocol: str) -> None:
    for key, owner in _ONLY_FOR.items():
        if key in table and protocol != owner:
            checker.problem(
                f"{path}.{key}",
                f'only applies to protocol = "{owner}" peers (this one is "{protocol}")',
            )


def _dns(checker: Checker, table: dict[str, Any], path: str) -> list[tuple[str, DistinguishedName]]:
    """The parsed DNs with their key paths."""
    # A single string is accepted for a peer with one certificate.
    if isinstance(table.get("dn"), str):
        table = {**table, "dn": [table["dn"]]}
    items = checker.string_list(table, "dn", path, []) or []
    dns: list[tuple[str, DistinguishedName]] = []
    for item_path, text in items:
        try:
            dn = parse_dn(text)
        except DNError as exc:
            checker.problem(item_path, str(exc))
            continue
        if dn.starts_with_country:
            # Comma-separated DNs are read as RFC 4514 (most specific first);
            # one that starts with C= was almost surely written root first
            # and would never match the certificate.
            checker.problem(
                item_path,
                f"{text!r} starts with C=, but a comma-separated DN is read most specific "
                "first (CN=...,O=REE,C=es); reverse it or write /C=es/O=REE/.../CN=...",
            )
        elif any(dn == seen for _, seen in dns):
            checker.problem(item_path, f"duplicate DN {dn.text!r}")
        else:
            dns.append((item_path, dn))
    return dns


def _url(checker: Checker, table: dict[str, Any], path: str, has_client: bool) -> str | None:
    url = checker.string(table, "url", path, None)
    if not url:
        return None
    try:
        parts = urlsplit(url)
        port_ok = parts.port is None or parts.port > 0
    except ValueError:
        parts, port_ok = None, False
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname or not port_ok:
        checker.problem(f"{path}.url", f"{url!r} is not an http(s)://host[:port]/path URL")
        return None
    if not has_client:
        checker.problem(f"{path}.url", "calling a peer needs a [client] section (cert, key, ca)")
    return url


def _cron(
    checker: Checker, table: dict[str, Any], path: str, timezone: ZoneInfo | None
) -> str | None:
    expression = checker.string(table, "collect", path, None)
    if not expression:
        return None
    from apscheduler.triggers.cron import CronTrigger

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            CronTrigger.from_crontab(expression, timezone=timezone or "UTC")
    except (ValueError, TypeError) as exc:
        checker.problem(f"{path}.collect", f"bad cron expression {expression!r}: {exc}")
        return None
    return expression


def _types(
    checker: Checker, table: dict[str, Any], key: str, path: str, *, allow_all: bool
) -> list[str]:
    """``collect_types`` (``TOD`` allowed, alone) or ``allowed_types``."""
    items = checker.string_list(table, key, path, None) or []
    if allow_all and key in table and not table[key]:
        checker.problem(f"{path}.{key}", f'must not be empty (use ["{TOD}"] for all)')
    for item_path, type_id in items:
        if type_id == TOD and allow_all:
            if len(items) > 1:
                checker.problem(item_path, f"{TOD} means all types and must be alone")
        elif type_id not in REAL_TYPE_IDS:
            hint = " (use [] for any type)" if type_id == TOD else ""
            checker.problem(item_path, f"{type_id!r} is not a file type{hint}")
    return [type_id for _, type_id in items]


def _participants(checker: Checker, table: dict[str, Any], path: str) -> list[str]:
    items = checker.string_list(table, "participants", path, []) or []
    for item_path, code in items:
        if not _PARTICIPANT.match(code):
            checker.problem(item_path, f"{code!r} is not a participant code (1-16 letters/digits)")
    return [code for _, code in items]


def _load_window(checker: Checker, table: dict[str, Any], path: str) -> LoadWindow | None:
    """The window, or None for no window (or after a problem)."""
    text = checker.string(table, "load_window", path, "")
    if not text or not text.strip():
        return None
    try:
        return LoadWindow.parse(text)
    except ValueError as exc:
        checker.problem(f"{path}.load_window", str(exc))
        return None


def _soap_action(checker: Checker, table: dict[str, Any], path: str) -> str | None:
    template = checker.string(table, "soap_action", path, "urn:{operation}")
    if template is None:
        return None
    try:
        fields = {name for _, name, _, _ in string.Formatter().parse(template) if name is not None}
    except ValueError as exc:
        checker.problem(f"{path}.soap_action", f"bad template {template!r}: {exc}")
        return None
    if fields - {"operation"}:
        checker.problem(
            f"{path}.soap_action",
            f"template {template!r} may only use {{operation}}, not "
            + ", ".join(sorted("{" + name + "}" for name in fields - {"operation"})),
        )
        return None
    return template


def _check_unique_ids(checker: Checker, ids: list[str | None]) -> None:
    # Case-insensitively: peer ids name spool folders, and some file systems
    # fold case.
    seen: dict[str, int] = {}
    for index, peer_id in enumerate(ids):
        if peer_id is None:
            continue
        key = peer_id.casefold()
        if key in seen:
            checker.problem(
                f"peers[{index}].id", f"duplicate peer id {peer_id!r} (also peers[{seen[key]}])"
            )
        else:
            seen[key] = index


def _check_unique_dns(
    checker: Checker,
    ids: list[str | None],
    dn_lists: list[list[tuple[str, DistinguishedName]]],
) -> None:
    # A DN must identify exactly one peer, or authentication is ambiguous.
    owner: dict[DistinguishedName, tuple[int, str]] = {}
    for index, dns in enumerate(dn_lists):
        for item_path, dn in dns:
            if dn not in owner:
                owner[dn] = (index, item_path)
                continue
            first, first_path = owner[dn]
            checker.problem(
                item_path,
                f"DN {dn.text!r} is already claimed by {first_path} (peer {ids[first]!r})",
            )

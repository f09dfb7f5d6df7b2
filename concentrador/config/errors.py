"""The error a bad configuration raises."""

from __future__ import annotations

from pathlib import Path


class ConfigError(Exception):
    """A configuration that cannot be used.

    ``problems`` holds one human-readable line per problem, each starting
    with the key path it is about (``peers[1].dn[0]: ...``), so an operator
    can fix them all in one pass.
    """

    def __init__(self, problems: list[str], path: Path | None = None) -> None:
        self.problems = list(problems)
        self.path = path
        where = f" in {path}" if path is not None else ""
        count = len(self.problems)
        summary = "; ".join(self.problems)
        super().__init__(f"{count} problem{'s' if count != 1 else ''}{where}: {summary}")

"""How a command fails: its own module so that the command modules and the
program that dispatches to them can both import it."""

from __future__ import annotations

__all__ = ["CommandFailed"]


class CommandFailed(Exception):
    """A command fails with a message and an exit code, no traceback."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code

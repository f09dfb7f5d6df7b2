"""The operator CLI: ``concentrador serve|status|check-config|certs|collect|...``."""

from concentrador.cli.program import main

__all__ = ["main"]

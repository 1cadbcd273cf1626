"""User-facing failures: one clear message and an exit code, never a traceback."""

from __future__ import annotations

EXIT_FAILED = 1  # the command ran and found a problem (a smoke step failed, an endpoint refused us)
EXIT_USAGE = 2  # bad input: unknown environment, impossible sizes, missing options


class OpsError(Exception):
    def __init__(self, message: str, exit_code: int = EXIT_FAILED) -> None:
        super().__init__(message)
        self.exit_code = exit_code


class UsageError(OpsError):
    def __init__(self, message: str) -> None:
        super().__init__(message, EXIT_USAGE)

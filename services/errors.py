"""Errors a user can meet, each able to print as one clear line.

Every error says what failed, why, and what to do; the command line prints
``str(error)`` and exits with ``error.exit_code`` (2 for usage and configuration,
1 for everything else). Messages never carry secrets: callers pass names, not values.
"""

from __future__ import annotations


class PgdeckError(Exception):
    """A failure the user can act on; ``hint`` says what to do."""

    exit_code = 1

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        if self.hint:
            return f"{self.message}; {self.hint}"
        return self.message


class ConfigError(PgdeckError):
    """The configuration file or the command line is wrong (exit status 2)."""

    exit_code = 2


class UsageError(PgdeckError):
    """The command line asks for something that cannot be (exit status 2)."""

    exit_code = 2


class ArchiveError(PgdeckError):
    """A report or audit entry could not be written or read where the archive keeps them."""


class SourceError(PgdeckError):
    """A source (Kubernetes API, object storage, a manifests directory) failed."""


class StorageError(SourceError):
    """Object storage could not be read."""


class StorageStalled(StorageError):
    """The storage endpoint accepted the request and then stopped answering."""


class KubeError(SourceError):
    """The Kubernetes API (or a manifests directory standing in for it) could not be read."""


def unexpected(exc: BaseException) -> str:
    """One line for a failure no ``PgdeckError`` describes (a bug, a file no pgdeck wrote):
    what it was, never a traceback on a screen."""
    from services.text import safe_line

    return safe_line(f"unexpected {type(exc).__name__}: {exc}")

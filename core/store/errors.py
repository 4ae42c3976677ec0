"""Errors of the Crystal Lattice DB (all LatticeError: the CLI prints one line, the UI st.error)."""
from __future__ import annotations

from dataclasses import dataclass

from core.errors import LatticeError


class NotFoundError(LatticeError):
    """A lattice, gem, run or snapshot that does not exist."""


class ConflictError(LatticeError):
    """Optimistic concurrency: the record changed since it was read; nothing was written."""


class SnapshotError(LatticeError):
    """A snapshot file is corrupted, truncated or not a lattice snapshot; nothing was written."""


@dataclass(frozen=True)
class ImportIssue:
    """One bad row of an import: where it is and what is wrong with it."""

    file: str
    line: int
    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}, line {self.line}, field {self.field!r}: {self.message}"


class ImportFailed(LatticeError):
    """An all-or-nothing import found bad rows; nothing was written."""

    def __init__(self, issues: list[ImportIssue]):
        self.issues = list(issues)
        more = f" (and {len(issues) - 1} more problem(s); --skip-bad skips bad rows)" if len(issues) > 1 else ""
        super().__init__(f"import failed, nothing written: {issues[0]}{more}")


class DatabaseUnavailable(LatticeError):
    """The database cannot be reached (server down, network cut, file unreadable).

    Nothing was written by the call that raised it; retry when the database is back
    (the store reconnects by itself: pooled connections are checked before use).
    """


class EncryptionError(LatticeError):
    """Encrypted gem content cannot be read or written with the configured keys."""

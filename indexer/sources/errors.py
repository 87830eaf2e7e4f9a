"""Why a source file could not be indexed, said with its file and line."""

from __future__ import annotations

from pathlib import Path
from typing import Optional


class SourceError(Exception):
    """A file (or one line of it) that cannot be read; the run goes on without it."""

    def __init__(self, path: Path | str, reason: str, line: Optional[int] = None):
        self.path = Path(path)
        self.reason = reason
        self.line = line
        super().__init__(str(self))

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}" if self.line else str(self.path)
        return f"{where}: {self.reason}"


class SupersededFile(SourceError):
    """An older version of a sitting day: skipped on purpose, not a fault."""


class SourceWarning(SourceError):
    """Read and indexed, with a caveat worth telling: a guessed encoding, a missing field."""

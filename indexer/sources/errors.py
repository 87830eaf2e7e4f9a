"""Why a source file could not be indexed, said with its file and line; and what a validation error says, in one line."""

from __future__ import annotations

from pathlib import Path
from typing import Collection, Mapping, Optional, Sequence


def validation_message(errors: Sequence[Mapping], skip: Collection[str] = (), count_more: bool = False,
                       default_field: str = "") -> str:
    """The first of pydantic's errors as "field.path: message" (the one way they are said, in files and answers alike).

    `skip` drops location parts that name where a value came from rather than
    which it is (FastAPI's "query", "path"); with `count_more`, "(and N more)"
    follows; `default_field` names a check made across fields (no location).
    """
    if not errors:
        return "invalid"
    first = errors[0]
    where = ".".join(str(part) for part in first.get("loc", ()) if part not in skip) or default_field
    message = str(first.get("msg", "invalid")).removeprefix("Value error, ")
    more = f" (and {len(errors) - 1} more)" if count_more and len(errors) > 1 else ""
    return f"{where}: {message}{more}" if where else f"{message}{more}"


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

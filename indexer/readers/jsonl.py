"""JSON Lines: one `indexer.records.Speech` object per line (see README).

Each line stands alone, so a bad line is reported with its number and
skipped while the rest of the file is indexed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Iterator

from pydantic import ValidationError

from indexer.errors import SourceError
from indexer.records import Speech


def looks_like_jsonl(head: str) -> bool:
    return head.lstrip().startswith("{")


def read_jsonl(path: Path, text: str, report: Callable[[SourceError], None]) -> Iterator[Speech]:
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            yield Speech.model_validate_json(line)
        except ValidationError as err:
            report(SourceError(path, _describe(err), line=number))


def _describe(err: ValidationError) -> str:
    first = err.errors()[0]
    where = ".".join(str(part) for part in first["loc"]) or "line"
    more = f" (and {err.error_count() - 1} more)" if err.error_count() > 1 else ""
    return f"invalid speech record: {where}: {first['msg']}{more}"

"""JSON Lines: one `indexer.sources.records.Speech` object per line (see README).

Each line stands alone, so a bad line is reported with its number and
skipped while the rest of the file is indexed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Iterator

from pydantic import ValidationError

from indexer.sources.errors import SourceError, validation_message
from indexer.sources.records import Speech


def looks_like_jsonl(head: str) -> bool:
    return head.lstrip().startswith("{")


def read_jsonl(path: Path, text: str, report: Callable[[SourceError], None]) -> Iterator[Speech]:
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            yield Speech.model_validate_json(line)
        except ValidationError as err:
            problem = validation_message(err.errors(), count_more=True, default_field="line")
            report(SourceError(path, f"invalid speech record: {problem}", line=number))

"""Results as a download: CSV or JSON Lines, one row per result, citation fields first (from the API's own results)."""

from __future__ import annotations

import csv
import io
import json
from typing import Literal

from fastapi.responses import Response

from service.models import Result

ExportFormat = Literal["json", "csv", "jsonl"]
SearchFormat = Literal["json", "csv", "jsonl", "atom"]  # /search also answers as an Atom feed (service/feeds.py)
FIELDS = ["date", "speaker", "party", "house", "debate", "reference", "citation", "url", "text",
          "score", "id", "speech_id", "person_id", "section", "time"]
MEDIA_TYPES = {"csv": "text/csv; charset=utf-8", "jsonl": "application/x-ndjson"}


def export_row(r: Result) -> dict:
    """A result (service.models.result_of) flattened to the download's columns."""
    return {
        "date": r.date.isoformat() if r.date else None, "speaker": r.speaker.name, "party": r.speaker.party,
        "house": r.house, "debate": r.debate, "reference": r.reference, "citation": r.citation, "url": r.url,
        "text": r.text, "score": r.score, "id": r.id, "speech_id": r.speech_id,
        "person_id": r.speaker.person_id, "section": r.section, "time": r.time,
    }


def export_response(results: list[Result], fmt: ExportFormat, name: str) -> Response:
    rows = [export_row(r) for r in results]
    if fmt == "csv":
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=FIELDS)
        writer.writeheader()
        writer.writerows(rows)
        body = buffer.getvalue()
    else:
        body = "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)
    return Response(body, media_type=MEDIA_TYPES[fmt],
                    headers={"Content-Disposition": f'attachment; filename="{name}.{fmt}"'})

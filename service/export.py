"""Results as a download: CSV or JSON Lines, one row per result, citation fields first."""

from __future__ import annotations

import csv
import io
import json
from typing import Literal

from fastapi.responses import Response

ExportFormat = Literal["json", "csv", "jsonl"]
FIELDS = ["date", "speaker", "party", "house", "debate", "reference", "citation", "url", "text",
          "score", "id", "speech_id", "person_id", "section", "time"]
MEDIA_TYPES = {"csv": "text/csv; charset=utf-8", "jsonl": "application/x-ndjson"}


def export_row(hit) -> dict:
    p = hit.passage
    return {
        "date": p.date.isoformat() if p.date else None, "speaker": p.speaker.name, "party": p.speaker.party,
        "house": p.house, "debate": p.debate, "reference": p.reference, "citation": p.citation, "url": p.url,
        "text": p.text, "score": round(hit.score, 6), "id": p.id, "speech_id": p.speech_id,
        "person_id": p.speaker.person_id, "section": p.section, "time": p.time,
    }


def export_response(hits, fmt: ExportFormat, name: str) -> Response:
    rows = [export_row(hit) for hit in hits]
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

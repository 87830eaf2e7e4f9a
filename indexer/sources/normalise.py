"""Small pure helpers that clean up what the sources print."""

from __future__ import annotations

import re
from typing import Optional

_TIME_24 = re.compile(r"^\s*0*(\d{1,2}):(\d{2})(?::(\d{2}))?\s*$")
_TIME_12 = re.compile(r"^\s*(\d{1,2})(?:[.:](\d{2}))?\s*(?:([ap])\.?\s*m\.?|(noon|midnight))\s*$", re.IGNORECASE)


def normalise_time(raw: Optional[str]) -> Optional[str]:
    """'014:30:00', '14:30', '4.30 pm', '11 am', '12 noon' -> 'HH:MM'; anything else -> None.

    ParlParse writes some times with a stray leading zero ('015:07:00') and
    some as 'unknown'; neither may stop a run, so the unreadable ones are
    dropped rather than raised.
    """
    if not raw:
        return None
    m = _TIME_24.match(raw)
    if m:
        hour, minute = int(m.group(1)), int(m.group(2))
    else:
        m = _TIME_12.match(raw)
        if not m:
            return None
        hour, minute = int(m.group(1)) % 12, int(m.group(2) or 0)
        if (m.group(3) or "").lower() == "p" or (m.group(4) or "").lower() == "noon":
            hour += 12
    if hour > 23 or minute > 59:
        return None
    return f"{hour:02d}:{minute:02d}"


def is_clock_line(line: str) -> bool:
    """A line that is nothing but a printed time stamp, e.g. '4.30 pm'."""
    return _TIME_12.match(line) is not None


# Windows-1252 characters that old ParlParse files write as numeric
# references to C1 control code points (&#151; for an em dash).
_C1_TO_CP1252 = {cp: bytes([cp]).decode("cp1252", errors="ignore") for cp in range(0x80, 0xA0)}
_C1_TABLE = {cp: ch for cp, ch in _C1_TO_CP1252.items() if ch}
_SPACES = re.compile(r"\s+")


def clean_text(text: str) -> str:
    """Fix C1 mojibake, fold runs of white space (non-breaking too), trim."""
    text = text.translate(_C1_TABLE).replace("\u00a0", " ")
    return _SPACES.sub(" ", text).strip()

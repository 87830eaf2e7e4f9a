"""Who a ParlParse speaker id is: their person id and their party on the day.

Reads a members folder in TheyWorkForYou's formats, whatever the files are
called: `<member>` records (per-term Commons memberships with a party),
`<lord>` records (peers with an affiliation), `<person>` records (a person
and the member or lord ids they held), and the JSON of person ids to dated
party memberships. Unknown speakers resolve to nothing; parties are never
guessed.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from lxml import etree

from indexer.sources.vocabulary import party_name

log = logging.getLogger(__name__)

_OPEN_END = dt.date(9999, 12, 31)

def _date(raw: Optional[str]) -> Optional[dt.date]:
    if not raw:
        return None
    raw = raw.strip()
    try:
        if len(raw) == 8 and raw.isdigit():
            return dt.date(int(raw[:4]), int(raw[4:6]), int(raw[6:]))
        if len(raw) == 4 and raw.isdigit():
            return dt.date(int(raw), 1, 1)
        return dt.date.fromisoformat(raw[:10])
    except ValueError:
        return None


@dataclass
class Membership:
    party: Optional[str]
    start: Optional[dt.date]
    end: Optional[dt.date]

    def covers(self, day: Optional[dt.date]) -> bool:
        if day is None:
            return True
        return (self.start is None or self.start <= day) and (self.end is None or day <= self.end)


@dataclass
class MemberDirectory:
    offices: dict[str, Membership] = field(default_factory=dict)  # member/lord id -> its term
    office_person: dict[str, str] = field(default_factory=dict)  # member/lord id -> person id
    person_offices: dict[str, list[str]] = field(default_factory=dict)
    person_memberships: dict[str, list[Membership]] = field(default_factory=dict)

    @classmethod
    def load(cls, folder: Optional[Path]) -> "MemberDirectory":
        directory = cls()
        if folder is None:
            return directory
        for path in sorted(Path(folder).rglob("*")):
            if not path.is_file():
                continue
            try:
                if path.suffix.lower() == ".json":
                    directory._read_json(path)
                elif path.suffix.lower() == ".xml":
                    directory._read_xml(path)
            except (OSError, ValueError, etree.XMLSyntaxError) as err:
                log.warning("members: skipped %s: %s", path, err)
        return directory

    def _read_xml(self, path: Path) -> None:
        for _, el in etree.iterparse(str(path), events=("end",), tag=("member", "lord", "person"),
                                     resolve_entities=True, load_dtd=True, recover=True):
            ident = el.get("id")
            if ident and el.tag in ("member", "lord"):
                party = el.get("party") if el.tag == "member" else el.get("affiliation")
                self.offices[ident] = Membership(party_name(party), _date(el.get("fromdate")), _date(el.get("todate")))
            elif ident and el.tag == "person":
                offices = [o.get("id") for o in el.iter("office") if o.get("id")]
                self.person_offices[ident] = offices
                for office in offices:
                    self.office_person[office] = ident
            el.clear()

    def _read_json(self, path: Path) -> None:
        data = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(data, dict):
            return
        for person, record in data.items():
            if not isinstance(record, dict):
                continue
            person_id = person if "/" in person else f"uk.org.publicwhip/person/{person}"
            memberships = [
                Membership(party_name(m.get("party")), _date(m.get("start_date")), _date(m.get("end_date")))
                for m in record.values()
                if isinstance(m, dict)
            ]
            if memberships:
                self.person_memberships.setdefault(person_id, []).extend(memberships)

    def resolve(self, speaker_ref: Optional[str], day: Optional[dt.date]) -> tuple[Optional[str], Optional[str]]:
        """A ParlParse speakerid or person_id -> (person id, party on that day)."""
        if not speaker_ref or speaker_ref.endswith("/unknown") or speaker_ref == "unknown":
            return None, None
        if "/person/" in speaker_ref:
            return speaker_ref, self.party_of_person(speaker_ref, day)
        # Old form: a per-term member or lord id, whose party is its own.
        office = self.offices.get(speaker_ref)
        return self.office_person.get(speaker_ref), office.party if office else None

    def party_of_person(self, person_id: str, day: Optional[dt.date]) -> Optional[str]:
        terms = list(self.person_memberships.get(person_id, []))
        # A Commons term still open when the members file was written says
        # nothing of later years; a peerage is for life.
        terms += [
            self.offices[o]
            for o in self.person_offices.get(person_id, [])
            if o in self.offices and ("/lord/" in o or self.offices[o].end != _OPEN_END)
        ]
        for term in terms:
            if term.party and term.covers(day):
                return term.party
        return None

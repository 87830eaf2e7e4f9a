"""Words that readers, stores and the query parser share: houses, party names, the sitting a speech belongs to."""

from __future__ import annotations

import re
from typing import Literal, Optional

House = Literal["commons", "lords"]
HOUSES: tuple[str, ...] = ("commons", "lords")

# The sources spell parties three ways (Lab, labour, Labour): print one.
PARTY_NAMES = {
    "lab": "Labour", "labour": "Labour",
    "con": "Conservative", "conservative": "Conservative",
    "ldem": "Liberal Democrat", "liberal-democrat": "Liberal Democrat",
    "lab/co-op": "Labour/Co-operative", "labourco-operative": "Labour/Co-operative",
    "snp": "Scottish National Party", "scottish-national-party": "Scottish National Party",
    "pc": "Plaid Cymru", "plaid-cymru": "Plaid Cymru",
    "dup": "Democratic Unionist Party", "uup": "Ulster Unionist Party",
    "sdlp": "Social Democratic and Labour Party",
    "social-democratic-and-labour-party": "Social Democratic and Labour Party",
    "sf": "Sinn Féin", "sinn-fein": "Sinn Féin",
    "xb": "Crossbench", "crossbench": "Crossbench", "bp": "Bishops", "bishop": "Bishops",
    "ind": "Independent", "independent": "Independent",
    "ind con": "Independent Conservative", "independent-conservative": "Independent Conservative",
    "ind lab": "Independent Labour", "independent-labour": "Independent Labour",
    "ind uu": "Independent Ulster Unionist", "independent-ulster-unionist": "Independent Ulster Unionist",
    "green": "Green", "ukip": "UKIP", "alliance": "Alliance", "res": "Respect", "respect": "Respect",
    "spk": "Speaker", "speaker": "Speaker", "deputy-speaker": "Deputy Speaker",
    "cwm": "Deputy Speaker", "dcwm": "Deputy Speaker", "other": "Other",
}
_NO_PARTY = {"", "unknown", "none"}


def party_name(raw: Optional[str]) -> Optional[str]:
    if raw is None or raw.strip().lower() in _NO_PARTY:
        return None
    return PARTY_NAMES.get(raw.strip().lower(), raw.strip())


# A ParlParse gid: uk.org.publicwhip/<collection>/<file stem up to the day><version letter>.<n>...
# e.g. uk.org.publicwhip/debate/2009-10-26b.1.0 or
# uk.org.publicwhip/standing/standing2009-10-20_CHILDPOV_05-0_2009-10-27a.1.0
_GID = re.compile(r"^(uk\.org\.publicwhip/[a-z]+/[^./]*?\d{4}-\d{2}-\d{2})[a-z]+\.")


def sitting_key(house: Optional[str], speech_id: str) -> Optional[str]:
    """The sitting (house, collection and day) a ParlParse speech belongs to, whatever the file version; else None.

    Every version of a sitting's file (a, b, c, ...) holds the whole sitting,
    so the newest replaces all the older ones held. The house is part of it:
    Lords and Commons written answers share gid prefixes and days.
    """
    match = _GID.match(speech_id)
    return f"{house}|{match.group(1)}" if match else None

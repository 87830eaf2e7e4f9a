"""Debate titles from the heading structure of real ParlParse days.

The printed headings do not always say which item of business a speech
belongs to: the old Commons files print a Bill and its clauses as minor
headings under the last question-time department (or the ten minute rule
motion before it), a 2016 Bill sits as a minor heading under the previous
Bill, an adjournment debate under a petition; Westminster Hall chair changes
and the Lords' "(Continued)" print headings in the middle of one debate.
"""

import hashlib

import pytest

from indexer.sources.readers import read_source

from fixtures import XML

DEBATE = "uk.org.publicwhip/debate/"


@pytest.fixture(scope="module")
def titles(members):
    """{speech id: debate title} over every file of the xml folder."""
    out = {}
    for path in sorted(XML.glob("*/*.xml")):
        for speech in read_source(path, members, lambda problem: None):
            out[speech.id] = speech.debate
    return out


def test_marine_bill_clauses_are_titled_by_the_bill_on_both_days(titles):
    # 26 Oct 2009: the clauses came out as "Home Department: New Clause 8 — ..."
    assert titles[DEBATE + "2009-10-26b.79.1"] == (
        "Marine and Coastal Access Bill [Lords]: New Clause 8 — MCZs: duty to manage and mitigate impacts upon existing activities"
    )
    assert titles[DEBATE + "2009-10-26b.32.3"] == (
        "Marine and Coastal Access Bill [Lords]: New Clause 2 — Power to enter into agreements with eligible bodies"
    )
    assert titles[DEBATE + "2009-10-26b.30.1"] == "Marine and Coastal Access Bill [Lords] (Programme) (No. 2)"
    # 27 Oct 2009: under the ten minute rule motion before it ("Closed Circuit Television ...").
    assert titles[DEBATE + "2009-10-27d.167.3"] == "Marine and Coastal Access Bill [Lords]: Clause 2 — General objective"
    assert titles[DEBATE + "2009-10-27d.199.7"] == "Marine and Coastal Access Bill [Lords]: Schedule 22 — Repeals"
    # The ten minute rule motion itself keeps its own title.
    assert titles[DEBATE + "2009-10-27d.164.1"] == "Closed Circuit Television (Monitoring and Promotion)"
    marine = [i for i, t in titles.items() if "Marine and Coastal Access Bill" in (t or "")]
    assert len(marine) == 341  # speeches (the ~900 of the report are passages)
    assert not [i for i, t in titles.items() if (t or "").startswith(("Home Department: New Clause", "Home Department: Clause"))]
    assert not [i for i, t in titles.items() if (t or "").startswith("Closed Circuit Television (Monitoring and Promotion):")]


def test_question_time_ends_after_topical_questions(titles):
    # An urgent question printed as a minor heading after Home Office questions.
    assert titles[DEBATE + "2009-10-26b.23.1"] == "Territorial Army"
    # The questions themselves stay under their department.
    assert titles[DEBATE + "2009-10-26b.17.2"] == "Home Department: Topical Questions"
    assert titles[DEBATE + "2009-10-26b.1.7"] == "Home Department: Animals (Scientific Procedures) Act"
    # A question about a Bill is a question, not a new item of business.
    trade_union = [i for i, t in titles.items() if i.startswith(DEBATE + "2016-05-11b") and t == "Scotland: Trade Union Bill"]
    assert len(trade_union) == 11


def test_2016_bill_is_not_under_the_previous_bill(titles):
    # 11 Mar 2016: National Health Service Bill printed as a minor heading under the Foreign National Offenders Bill.
    assert titles[DEBATE + "2016-03-11b.615.2"] == "National Health Service Bill"
    assert titles[DEBATE + "2016-03-11b.615.3"] == "National Health Service Bill"
    assert titles[DEBATE + "2016-03-11b.545.3"] == "Foreign National Offenders (Exclusion from the UK) Bill"
    assert not [t for t in titles.values() if "Offenders (Exclusion from the UK) Bill:" in (t or "")]


def test_a_petition_does_not_title_the_debate_after_it(titles):
    after = [(i, t) for i, t in titles.items() if i.startswith(DEBATE + "2016-05-09b.5") and i > DEBATE + "2016-05-09b.508.2"]
    assert after and all(t == "European Convention on Human Rights" for _, t in after)
    assert titles[DEBATE + "2016-05-09b.508.1"] == "Petition - Wellington Railway Station"
    assert titles[DEBATE + "2016-05-10a.599.0"] == "HMRC Office Closure (Walsall)"
    assert not [t for t in titles.values() if (t or "").lower().startswith("petition") and ":" in t]


def test_westminster_hall_chair_change_keeps_the_debate(titles):
    wh = "uk.org.publicwhip/westminhall/2009-10-27a."
    # "[Mrs. Joan Humble in the Chair]" at 37.1, in the middle of the debate on military vehicles.
    before, after = titles[wh + "37.0"], titles[wh + "37.2"]
    assert before == after == "Military Vehicles and Aircraft"
    assert titles[wh + "1.2"] == "Biofuels"  # "[David Taylor in the Chair] — Biofuels"
    assert not [t for t in titles.values() if "in the Chair" in (t or "")]


def test_lords_continued_heading_keeps_the_debate(titles):
    lords = "uk.org.publicwhip/lords/"
    # Coroners and Justice Bill, Report (2nd Day), resumed after a question for short debate.
    assert titles[lords + "2009-10-26a.981.3"] == titles[lords + "2009-10-26a.1059.3"] == "Coroners and Justice Bill: Report (2nd Day)"
    assert titles[lords + "2022-09-09c.376.1"] == "Her Late Majesty Queen Elizabeth II - Tributes"
    assert not [t for t in titles.values() if "(Continued)" in (t or "")]


def test_standalone_business_is_not_part_of_the_debate_before(titles):
    points = [t for i, t in titles.items() if i.startswith(DEBATE + "2016-05-12a") and "Points of Order" in (t or "")]
    assert points and set(points) == {"Points of Order"}
    assert titles[DEBATE + "2009-10-27d.214.2"] == "Opposition Day: Parading in Northern Ireland"
    assert titles[DEBATE + "2009-10-27d.257.15"] == "Regional Select Committee (West Midlands)"


# Written answers and statements, committees and Westminster Hall keep their titles exactly (a digest of every
# speech's id and title); in the chambers the repairs above leave this many distinct titles (before: 79, 155, 21, 844).
UNCHANGED = {
    "2009-10_wrans": (1541, "b1f2d89ef0c58bdb"), "2009-10_lordswrans": (144, "51e65d0c5b4b96c1"),
    "2009-10_wms": (13, "e12a983faf307c5e"), "2009-10_lordswms": (12, "d1d93571aa097c38"),
    "2009-10_standing": (273, "1e14a5839b9d7827"), "2009-10_westminhall": (125, "aa825681bda699d4"),
}


@pytest.mark.parametrize("collection", sorted(UNCHANGED))
def test_other_collections_keep_their_titles(members, collection):
    items = sorted(
        (speech.id, speech.debate or "")
        for path in sorted((XML / collection).glob("*.xml"))
        for speech in read_source(path, members, lambda problem: None)
    )
    digest = hashlib.sha256("\n".join(f"{i}\t{t}" for i, t in items).encode()).hexdigest()[:16]
    assert (len(items), digest) == UNCHANGED[collection]


@pytest.mark.parametrize("prefixes, distinct, speeches", [
    (("debate/2009",), 74, 816), (("debate/2016", "debate/2020"), 153, 2277),
    (("lords/2009",), 20, 371), (("lords/2022",), 836, 9497),
])
def test_distinct_titles_in_the_chambers(titles, prefixes, distinct, speeches):
    mine = {i: t for i, t in titles.items() if i.startswith(tuple("uk.org.publicwhip/" + p for p in prefixes))}
    assert (len(set(mine.values())), len(mine)) == (distinct, speeches)

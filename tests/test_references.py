"""Hansard column references: parsed from print, formatted back, cited."""

import datetime as dt

import pytest

from indexer.sources.references import Column
from indexer.sources.references import format_citation, format_reference, parse_colnum, parse_reference


@pytest.mark.parametrize(
    "printed, column",
    [
        ("823 cc554-7GC", Column(volume=823, start=554, end=557, suffix="GC")),
        ("c312", Column(start=312, end=312)),
        ("cc349-50W", Column(start=349, end=350, suffix="W")),
        ("c77WS", Column(start=77, end=77, suffix="WS")),
        ("cc1-2WH", Column(start=1, end=2, suffix="WH")),
        ("600 c5", Column(volume=600, start=5, end=5)),
        ("cc1299-301", Column(start=1299, end=1301)),
        ("cc99-102", Column(start=99, end=102)),
    ],
)
def test_parse_reference_reads_volume_columns_and_suffix(printed, column):
    assert parse_reference(printed) == column


@pytest.mark.parametrize("printed", ["823 cc554-7GC", "c312", "cc349-50W", "c77WS", "cc1299-301"])
def test_format_reference_prints_what_was_parsed(printed):
    assert format_reference(parse_reference(printed)) == printed


@pytest.mark.parametrize("junk", ["", "x12", "volume 3", "cc"])
def test_parse_reference_refuses_junk(junk):
    assert parse_reference(junk) is None


def test_parse_colnum_splits_number_and_series():
    assert parse_colnum("349W") == (349, "W")
    assert parse_colnum("12") == (12, None)
    assert parse_colnum(None) == (None, None)


@pytest.mark.parametrize(
    "house, section, date, printed, citation",
    [
        ("lords", "grand-committee", dt.date(2023, 7, 5), "823 cc554-7GC", "HL Deb 5 July 2023 vol 823 cc554-7GC"),
        ("commons", "debates", dt.date(2009, 10, 26), "c312", "HC Deb 26 October 2009 c312"),
        ("commons", "wrans", dt.date(2009, 10, 26), "cc349-50W", "HC Deb 26 October 2009 cc349-50W"),
        ("commons", "standing", dt.date(2009, 10, 27), "c125", "PBC Deb 27 October 2009 c125"),
        ("lords", "grand-committee", None, "823 cc554-7GC", "HL Deb vol 823 cc554-7GC"),
    ],
)
def test_citation_in_hansard_style(house, section, date, printed, citation):
    assert format_citation(house, section, date, parse_reference(printed)) == citation


def test_no_citation_without_a_column():
    assert format_citation(None, None, None, Column()) is None


# ---------------------------------------------------------------- OSCOLA

from indexer.sources.references import (  # noqa: E402
    format_oscola, parse_citation, theyworkforyou_url)

OCT26 = dt.date(2009, 10, 26)


@pytest.mark.parametrize(
    "house, section, date, column, bill, expected",
    [
        ("commons", "wms", OCT26, Column(start=6, end=6, suffix="WS"), None, "HC Deb 26 October 2009, col 6WS"),
        ("lords", "grand-committee", dt.date(2023, 7, 5), Column(volume=823, start=554, end=557, suffix="GC"), None,
         "HL Deb 5 July 2023, vol 823, cols 554\u201357GC"),
        ("lords", "grand-committee", None, Column(volume=823, start=554, end=557, suffix="GC"), None,
         "HL Deb, vol 823, cols 554\u201357GC"),
        ("commons", "wrans", OCT26, Column(start=505, end=505, suffix="W"), None, "HC Deb 26 October 2009, col 505W"),
        ("commons", "wrans", OCT26, Column(start=349, end=350, suffix="W"), None, "HC Deb 26 October 2009, cols 349\u201350W"),
        # The Lords put the series of written answers and statements before the number
        ("lords", "wrans", OCT26, Column(start=261, end=261, suffix="WA"), None, "HL Deb 26 October 2009, col WA261"),
        ("lords", "wms", OCT26, Column(start=87, end=88, suffix="WS"), None, "HL Deb 26 October 2009, cols WS87\u201388"),
        ("commons", "westminhall", dt.date(2009, 10, 27), Column(start=48, end=48, suffix="WH"), None,
         "HC Deb 27 October 2009, col 48WH"),
        ("commons", "debates", OCT26, Column(start=1299, end=1301), None, "HC Deb 26 October 2009, cols 1299\u2013301"),
        ("lords", "lords", OCT26, Column(start=971, end=972), None, "HL Deb 26 October 2009, cols 971\u201372"),
        ("commons", "standing", dt.date(2009, 10, 27), Column(start=125, end=125), "Child Poverty Bill",
         "Child Poverty Bill Deb 27 October 2009, col 125"),
        # a clause heading is not the Bill's name
        ("commons", "standing", dt.date(2009, 10, 27), Column(start=125, end=126), "Clause 2 \u2014 Duties",
         "PBC Deb 27 October 2009, cols 125\u201326"),
        ("commons", "debates", OCT26, Column(), None, "HC Deb 26 October 2009"),
        ("commons", "debates", None, Column(), None, None),  # nothing to cite
        (None, None, OCT26, Column(start=5, end=5), None, None),  # no house: not a Hansard citation
    ],
)
def test_format_oscola(house, section, date, column, bill, expected):
    assert format_oscola(house, section, date, column, bill) == expected


# ---------------------------------------------------------------- TheyWorkForYou

TWFY = "https://www.theyworkforyou.com"


@pytest.mark.parametrize(
    "gid, session, bill, expected",
    [
        ("uk.org.publicwhip/debate/2009-10-26b.30.1", None, None, f"{TWFY}/debates/?id=2009-10-26b.30.1"),
        ("uk.org.publicwhip/westminhall/2009-10-27a.1.2", None, None, f"{TWFY}/whall/?id=2009-10-27a.1.2"),
        ("uk.org.publicwhip/wrans/2009-10-26f.294961.q0", None, None, f"{TWFY}/wrans/?id=2009-10-26f.294961.q0"),
        ("uk.org.publicwhip/wms/2009-10-26c.6WS.2", None, None, f"{TWFY}/wms/?id=2009-10-26c.6WS.2"),
        ("uk.org.publicwhip/lords/2022-09-05a.1.1", None, None, f"{TWFY}/lords/?id=2022-09-05a.1.1"),
        # Lords written answers and statements: TheyWorkForYou loads them beside the Commons' (xml2db.pl)
        ("uk.org.publicwhip/wrans/2009-10-26a.101.1", None, None, f"{TWFY}/wrans/?id=2009-10-26a.101.1"),
        ("uk.org.publicwhip/wms/2009-10-26a.87.1", None, None, f"{TWFY}/wms/?id=2009-10-26a.87.1"),
        # Public Bill Committees: pbc/<session>/<Bill_Title>/<gid less "standing<date>_<BILL>_">
        ("uk.org.publicwhip/standing/standing2009-10-20_CHILDPOV_05-0_2009-10-27a.2.2", "2008-09", "Child Poverty Bill",
         f"{TWFY}/pbc/2008-09/Child_Poverty_Bill/05-0_2009-10-27a.2.2"),
        ("uk.org.publicwhip/standing/standing2009-10-20_CHILDPOV_05-0_2009-10-27a.2.2", None, "Child Poverty Bill", None),
        ("uk.org.publicwhip/standing/standing2009-10-20_CHILDPOV_05-0_2009-10-27a.2.2", "2008-09", "Clause 2", None),
        ("contribution/823-cc554-7GC/32217576a7", None, None, None),
        ("uk.org.publicwhip/debate/2009-10-26b.30.1\"><script>", None, None, None),
        ("uk.org.publicwhip/member/1597", None, None, None),  # not a section TheyWorkForYou has pages for
        (None, None, None, None),
    ],
)
def test_theyworkforyou_url(gid, session, bill, expected):
    assert theyworkforyou_url(gid, session, bill) == expected


def test_links_of_a_passage_only_web_urls():
    from indexer.sources.records import Passage, Speaker

    def passage(**fields):
        return Passage(id="x#0", speech_id="uk.org.publicwhip/wms/2009-10-26c.6WS.2", position=0, text="t",
                       speaker=Speaker(), column=Column(), **fields)

    links = passage(url="http://www.publications.parliament.uk/pa/x.htm#1").links
    assert links.theyworkforyou == f"{TWFY}/wms/?id=2009-10-26c.6WS.2"
    assert links.printed == "http://www.publications.parliament.uk/pa/x.htm#1"
    assert passage(url="javascript:alert(1)").links.printed is None
    assert passage().model_dump(mode="json")["links"] == {"theyworkforyou": f"{TWFY}/wms/?id=2009-10-26c.6WS.2", "printed": None}


# ---------------------------------------------------------------- citations read

@pytest.mark.parametrize(
    "text, expected",
    [
        ("823 cc554-7GC", dict(volume=823, start=554, end=557, suffix="GC")),
        ("HL Deb vol 823 cc554-7GC", dict(house="lords", volume=823, start=554, end=557, suffix="GC")),
        ("HL Deb 5 July 2023, vol 823, cols 554\u201357GC",
         dict(house="lords", date=dt.date(2023, 7, 5), volume=823, start=554, end=557, suffix="GC")),
        ("HC Deb 26 October 2009, col 6WS", dict(house="commons", date=OCT26, start=6, end=6, suffix="WS")),
        ("HC Deb, 5 July 2023, c554", dict(house="commons", date=dt.date(2023, 7, 5), start=554, end=554)),
        ("cols 554\u201357GC", dict(start=554, end=557, suffix="GC")),
        ("HL Deb 26 Oct 2009, col WA261", dict(house="lords", date=OCT26, start=261, end=261, suffix="WA")),
        ("hc deb 26 october 2009 cc349-50w", dict(house="commons", date=OCT26, start=349, end=350, suffix="W")),
        ("HC Deb 2009-10-26 c99-2", dict(house="commons", date=OCT26, start=99, end=102)),
        ("  HC  Deb 27 October 2009,  col 48WH ", dict(house="commons", date=dt.date(2009, 10, 27), start=48, end=48, suffix="WH")),
    ],
)
def test_parse_citation(text, expected):
    parsed = parse_citation(text)
    assert parsed.model_dump() == {"house": None, "date": None, "volume": None, "suffix": None, "session": None, **expected}


@pytest.mark.parametrize(
    "text, why",
    [
        ("the cat sat on the mat", "expected a Hansard citation"),
        ("", "empty"),
        ("HC Deb 26 October 2009", "expected a Hansard citation"),  # no columns
        ("HC Deb 31 February 2009, c5", "not a date"),
        ("HC Deb 26 Smarch 2009, c5", "not a date"),
        ("cc557-554", "forwards"),
        ("c999999", "at most"),
        ("vol 99999 c5", "volume"),
        ("c5" + " " * 300, "longer than"),
        ("col WA5GC", "both before and after"),
        ("c5; DROP TABLE passages", "expected a Hansard citation"),
    ],
)
def test_parse_citation_refuses(text, why):
    with pytest.raises(ValueError, match=why) as caught:
        parse_citation(text)
    assert "823 cc554-7GC" in str(caught.value)  # every refusal says what was expected

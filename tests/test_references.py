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

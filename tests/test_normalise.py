"""Odd times and odd characters in the sources are normalised, never fatal."""

import pytest

from indexer.sources.normalise import clean_text, is_clock_line, normalise_time


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("014:30:00", "14:30"),  # ParlParse's stray leading zero
        ("015:07:00", "15:07"),
        ("09:30:00", "09:30"),
        ("4.30 pm", "16:30"),
        ("11 am", "11:00"),
        ("12.00 noon", "12:00"),
        ("12.15 am", "00:15"),
        ("unknown", None),
        ("25:99", None),
        ("", None),
        (None, None),
    ],
)
def test_normalise_time(raw, expected):
    assert normalise_time(raw) == expected


def test_clock_line_is_only_a_time():
    assert is_clock_line("4.30 pm")
    assert not is_clock_line("4.30 pm is when the sitting resumed")


def test_clean_text_fixes_c1_dashes_and_folds_space():
    assert clean_text("a\x96b\xa0 c \n d ") == "a\u2013b c d"

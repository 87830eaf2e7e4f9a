"""Saying when nothing matches well: the confidence rule (service/search/confidence.py) and its evidence."""

import math

import pytest

from service.search import confidence as conf
from service.search.confidence import MatchEvidence, confidence, is_weak, meaningful_words, phrase_of


def evidence(cosine=0.6, matched=3, words=3, phrase=False):
    return MatchEvidence(best_cosine=cosine, matched_words=matched, query_words=words, phrase_found=phrase)


def test_an_off_topic_query_is_weak():
    # "chocolate brownie recipe with walnuts" on the full corpus: low cosine, a word missing.
    assert is_weak(evidence(cosine=0.30, matched=3, words=4))
    assert is_weak(evidence(cosine=0.25, matched=0, words=2))


def test_an_on_topic_query_is_not_weak():
    # A QA question's median evidence on the full corpus: cosine 0.69, every word found.
    assert not is_weak(evidence(cosine=0.69, matched=12, words=12))
    # A name found as a phrase (a speaker) despite a poor embedding.
    assert not is_weak(evidence(cosine=0.33, matched=2, words=2, phrase=True))


def test_weak_is_confidence_below_the_threshold():
    for e in (evidence(cosine=c / 20, matched=m, words=4) for c in range(-20, 21) for m in range(5)):
        assert is_weak(e) == (confidence(e) < conf.WEAK_BELOW)


def test_bounded_in_zero_one_even_for_odd_input():
    cases = [evidence(cosine=c) for c in (-1.0, 0.0, 1.0, 5.0, -5.0, float("nan"), float("inf"), float("-inf"))]
    cases += [evidence(matched=9, words=3), evidence(matched=-1, words=3), evidence(matched=0, words=0)]
    for e in cases:
        value = confidence(e)
        assert 0.0 <= value <= 1.0 and not math.isnan(value)


def test_monotone_in_best_cosine():
    values = [confidence(evidence(cosine=c / 100, matched=2, words=3)) for c in range(-100, 101, 5)]
    assert all(a < b for a, b in zip(values, values[1:]))


def test_monotone_in_matched_words():
    values = [confidence(evidence(cosine=0.4, matched=m, words=5)) for m in range(6)]
    assert all(a < b for a, b in zip(values, values[1:]))


def test_a_phrase_found_raises_confidence():
    with_phrase = evidence(cosine=0.35, matched=2, words=2, phrase=True)
    assert confidence(with_phrase) > confidence(evidence(cosine=0.35, matched=2, words=2))


def test_a_query_without_meaningful_words_rests_on_the_cosine():
    assert meaningful_words("what is the") == []
    nothing = MatchEvidence(best_cosine=0.6, matched_words=0, query_words=0)
    assert nothing.word_share == 1.0
    assert confidence(nothing) == confidence(evidence(cosine=0.6, matched=3, words=3))
    assert is_weak(MatchEvidence(best_cosine=0.1, matched_words=0, query_words=0))


def test_meaningful_words_and_phrase():
    assert meaningful_words('The Biofuels and "carbon capture" biofuels -coal speaker:"Lord Alton"') == [
        "biofuels", "carbon", "capture"]
    assert phrase_of("fit for human habitation") == "fit for human habitation"
    assert phrase_of("biofuels") == "biofuels"  # one word is its own phrase
    assert phrase_of("same sex") == "same sex"
    assert phrase_of("what is the") == ""  # no meaningful word
    assert phrase_of(" ".join(["word"] * 9)) == ""  # too long to be a name or a title


@pytest.fixture(scope="module")
def small_store(small_index):
    from indexer.store import Location, open_store

    store = open_store(Location.of(small_index))
    yield store
    store.close()


@pytest.mark.parametrize("query, weak", [("chocolate brownie recipe with walnuts", True), ("biofuels", False)])
def test_on_the_small_index(small_store, encoder, query, weak):
    measured = conf.measure(small_store, query, encoder.encode_query(query))
    assert measured.query_words == len(meaningful_words(query))
    assert -1.0 <= measured.best_cosine <= 1.0
    assert is_weak(measured) is weak, (measured, confidence(measured))


# ---------------------------------------------------------------- in the API and on the page (both stores)

OFF_TOPIC = "chocolate brownie recipe with walnuts"


@pytest.mark.parametrize("mode", ["hybrid", "dense", "keyword"])
def test_search_says_when_nothing_matches_well(client, mode):
    off = client.get("/search", params={"q": OFF_TOPIC, "mode": mode}).json()
    on = client.get("/search", params={"q": "biofuels from palm oil", "mode": mode}).json()
    assert off["weak"] is True and off["confidence"] < 0.25
    assert on["weak"] is False and on["confidence"] > 0.5
    if mode != "keyword":
        assert off["results"]  # still the nearest passages, only flagged


def test_filters_alone_measure_no_confidence(client):
    body = client.get("/search", params={"q": "house:lords"}).json()
    assert body["confidence"] is None and body["weak"] is False and body["results"]


def test_the_page_says_no_close_matches_above_weak_results(page, live_service):
    from playwright.sync_api import expect

    from fixtures import settled

    page.goto(live_service + "/?q=" + OFF_TOPIC.replace(" ", "+"))
    settled(page)
    expect(page.locator("#status")).to_contain_text("No close matches; the nearest are:")
    expect(page.locator("#results li.result").first).to_be_visible()
    page.goto(live_service + "/?q=biofuels+from+palm+oil")
    settled(page)
    expect(page.locator("#status")).not_to_contain_text("No close matches")

"""Highlighting: which sentences of a result match the query, and where its words are."""

import numpy as np
import pytest

from indexer.sources.passages import sentence_spans
from indexer.store.words import spans, stem, stems
from service.search.highlight import Highlighter, choose, word_matches

TEXT = ("The Minister has set out the costs. High speed rail will cost £56 billion, Mr. Speaker. "
        "Nobody in this House doubts the need for new railways.")


def test_sentence_spans_are_offsets_into_the_text_without_surrounding_space():
    spans = sentence_spans("  " + TEXT + "  ")
    sentences = [("  " + TEXT + "  ")[a:b] for a, b in spans]
    assert sentences == [
        "The Minister has set out the costs.",
        "High speed rail will cost £56 billion, Mr. Speaker.",  # "Mr." does not end a sentence
        "Nobody in this House doubts the need for new railways.",
    ]


def test_words_are_cut_and_stemmed_as_the_keyword_index_holds_them(small_index):
    # The highlighter's words (Python, with offsets) are the engine's terms (tantivy's analyser), on real text.
    from indexer.store.embedded import EmbeddedStore
    for n, (_, passage) in enumerate(EmbeddedStore(small_index).iter_passages()):
        text = passage.text + " Café naïve don't covid-19 " + "x" * 50
        assert [term for term, _, _ in spans(text)] == stems(text), passage.id
        assert all(stem(text[a:b]) == term for term, a, b in spans(text))
        if n > 300:
            break


def test_word_matches_stem_like_keyword_search():
    sentences = ["New railways are costing more.", "Nothing here.", "The railway costs too much."]
    found = word_matches(sentences, '"railway" OR "cost"')
    assert set(found) == {0, 2}
    # Stemmed: "railways" and "costing" match "railway" and "cost".
    assert [sentences[0][a:b] for a, b in found[0][1]] == ["railways", "costing"]
    assert found[2][0] == pytest.approx(found[0][0])  # BM25: both words, sentences of one length
    both, one = (word_matches(["The railway costs.", "The railway stops."], '"railway" OR "cost"')[i][0] for i in (0, 1))
    assert both > one > 0
    assert word_matches(sentences, '"zebra"') == {}
    assert word_matches(sentences, "") == {}
    # A phrase is marked whole, where its words stand in a row, and only there.
    phrased = word_matches(["High speed rail is fast; rail at high speed is not.", "Speed high rail."], '"high speed rail"')
    assert list(phrased) == [0] and phrased[0][1] == [(0, 15)]


def test_choose_names_the_best_and_a_close_second_in_text_order():
    assert choose([0.1, 3.0, 0.2]) == [1]
    assert choose([2.5, 3.0, 0.2]) == [0, 1]
    assert choose([None]) == [0]
    assert choose([]) == []


def test_highlighter_prefers_shared_words_and_falls_back_to_meaning(encoder):
    encoded = []

    def encode_many(texts):
        encoded.extend(texts)
        return encoder.encode(texts)

    highlighter = Highlighter(encode_many)
    query = encoder.encode_query("the price of the new trains")
    texts = [TEXT, "We debated this at length last week. Fares on the Hitachi carriages will double by next year."]
    words, meaning = highlighter.page(texts, '"high speed" OR "rail"', query)

    assert words.by == "words"
    assert [s.text for s in words.sentences] == ["High speed rail will cost £56 billion, Mr. Speaker."]
    assert [TEXT[a:b] for a, b in words.marks] == ["High speed", "rail"]

    assert meaning.by == "meaning" and meaning.marks == []
    assert [s.text for s in meaning.sentences] == ["Fares on the Hitachi carriages will double by next year."]
    assert meaning.sentences[0].score > 0.2
    # Only the passage without shared words was embedded, and a second look is served from the cache.
    assert encoded == ["We debated this at length last week.", "Fares on the Hitachi carriages will double by next year."]
    highlighter.page(texts[1:], "", query)
    assert len(encoded) == 2


def test_highlighter_without_a_vector_names_nothing_where_no_word_is_shared():
    highlighter = Highlighter(lambda texts: np.zeros((len(texts), 384), dtype=np.float32))
    [found] = highlighter.page(["Nothing in common here. At all."], '"railway"', None)
    assert found.by is None and found.sentences == [] and found.marks == []


# ------------------------------------------------------------------ over HTTP


def test_search_results_name_their_best_sentences_with_exact_offsets(client):
    body = client.get("/search", params={"q": "Chinese surveillance cameras bought for HS2"}).json()
    assert all(r["highlights"] for r in body["results"])
    for result in body["results"]:
        assert result["highlighted_by"] in ("words", "meaning")
        for sentence in result["highlights"]:
            assert result["text"][sentence["start"]:sentence["end"]] == sentence["text"]
        for start, end in result["marks"]:
            assert result["text"][start:end].lower().rstrip("s") in {"chinese", "surveillance", "camera", "bought", "hs2"}
    top = body["results"][0]
    assert any("HS2" in s["text"] or "camera" in s["text"].lower() for s in top["highlights"])


def test_a_phrase_query_highlights_the_sentence_holding_the_phrase(client):
    body = client.get("/search", params={"q": '"palm oil"', "mode": "keyword", "k": 5}).json()
    assert body["results"]
    for result in body["results"]:
        assert result["highlighted_by"] == "words"
        assert any("palm oil" in s["text"].lower() for s in result["highlights"])
        assert "palm oil" in [result["text"][a:b].lower() for a, b in result["marks"]]


def test_highlighting_can_be_turned_off_and_is_opt_in_for_similar(client):
    plain = client.get("/search", params={"q": "biofuels", "highlight": "false"}).json()["results"]
    assert plain and all(r["highlights"] == [] and r["marks"] == [] and r["highlighted_by"] is None for r in plain)

    seed = plain[0]["speech_id"]
    similar = client.get("/similar", params={"speech_id": seed, "k": 3}).json()["results"]
    assert all(r["highlights"] == [] for r in similar)
    highlighted = client.get("/similar", params={"speech_id": seed, "k": 3, "highlight": "true"}).json()["results"]
    assert [r["id"] for r in highlighted] == [r["id"] for r in similar]
    assert all(r["highlighted_by"] == "meaning" and r["highlights"] for r in highlighted)

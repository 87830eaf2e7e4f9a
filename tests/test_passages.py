"""Speeches are cut into paragraph passages that fit the model."""

import datetime as dt

from indexer.sources.passages import approximate_tokens, speech_passages, split_sentences
from indexer.sources.records import Speech


def _speech(*paragraphs, **fields):
    return Speech(id="test/1", paragraphs=list(paragraphs), **fields)


def _words(n, word="word"):
    return " ".join([word] * n)


def test_one_passage_per_paragraph_with_stable_ids():
    speech = _speech(_words(20, "alpha"), _words(20, "beta"), _words(20, "gamma"), reference="c312",
                     house="commons", section="debates", date=dt.date(2009, 10, 26))
    passages = speech_passages(speech, max_tokens=256)
    assert [p.id for p in passages] == ["test/1#0", "test/1#1", "test/1#2"]
    assert [p.position for p in passages] == [0, 1, 2]
    assert all(p.reference == "c312" and p.citation == "HC Deb 26 October 2009 c312" for p in passages)
    assert speech_passages(speech, max_tokens=256) == passages  # same input, same passages


def test_long_paragraph_is_split_at_sentence_boundaries():
    sentences = [f"Sentence number {i} talks about the railway budget and its many costs." for i in range(40)]
    passages = speech_passages(_speech(" ".join(sentences)), max_tokens=60, count=approximate_tokens)
    assert len(passages) > 1
    assert all(approximate_tokens(p.text) <= 60 for p in passages)
    assert all(p.text.endswith(".") for p in passages)  # cut between sentences, not inside one
    assert " ".join(p.text for p in passages) == " ".join(sentences)


def test_short_fragment_is_joined_to_a_neighbour():
    passages = speech_passages(_speech(_words(30, "alpha"), "Hear, hear.", _words(30, "beta")), max_tokens=256)
    assert len(passages) == 2
    assert "Hear, hear." in passages[0].text or "Hear, hear." in passages[1].text


def test_sentence_splitter_keeps_abbreviations():
    assert split_sentences("I thank the hon. Member for St. Albans. He is right.") == [
        "I thank the hon. Member for St. Albans.",
        "He is right.",
    ]


def test_passage_time_comes_from_its_paragraph_or_the_speech():
    speech = Speech(id="t/2", time="14:30", paragraphs=[{"text": _words(10)}, {"text": _words(10, "x"), "time": "16:30"}])
    assert [p.time for p in speech_passages(speech, 256)] == ["14:30", "16:30"]

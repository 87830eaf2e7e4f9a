"""Speeches -> passages: one per paragraph, each small enough for the model.

A paragraph longer than the model reads is split at sentence boundaries
into consecutive passages; a fragment too short to stand alone (a
"rose—", a one-line "Oh!", the tail of a split) is joined to a neighbour
within its speech. Ids are "<speech id>#<n>", n from 0, so they are stable
across rebuilds of the same input with the same model.
"""

from __future__ import annotations

import re
from typing import Callable, Iterator

from indexer.records import Paragraph, Passage, Speech
from indexer.references import format_citation, format_reference

MIN_WORDS = 8
TokenCounter = Callable[[str], int]

# Words that end in a full stop without ending a sentence in Hansard.
_ABBREVIATIONS = {
    "mr", "mrs", "ms", "dr", "st", "hon", "rt", "no", "nos", "col", "cols", "cc", "c", "vol",
    "e.g", "i.e", "etc", "cf", "para", "paras", "art", "sch", "reg", "viz", "gen", "lt", "col", "sq",
}
_SENTENCE_END = re.compile(r"(?<=[.!?…])[\"”’)]*\s+(?=[\"“‘(\[A-Z0-9£$€])")


def approximate_tokens(text: str) -> int:
    """Word-piece count estimate for when no tokenizer is at hand."""
    return int(len(text.split()) * 1.4) + 2


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) character offsets of each sentence of text, surrounding space left out."""
    spans, start = [], 0
    for m in _SENTENCE_END.finditer(text):
        candidate = text[start : m.start()].rstrip()
        last_word = candidate.rsplit(None, 1)[-1].rstrip(".").lower() if candidate else ""
        if last_word in _ABBREVIATIONS or (len(last_word) == 1 and last_word.isalpha()):
            continue
        spans.append(_trimmed(text, start, m.end()))
        start = m.end()
    if text[start:].strip():
        spans.append(_trimmed(text, start, len(text)))
    return [span for span in spans if span[1] > span[0]]


def _trimmed(text: str, start: int, end: int) -> tuple[int, int]:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


def split_sentences(text: str) -> list[str]:
    return [text[start:end] for start, end in sentence_spans(text)]


def split_long(text: str, max_tokens: int, count: TokenCounter) -> list[str]:
    """Sentence-bounded pieces of at most max_tokens (one over-long sentence is cut by words)."""
    if count(text) <= max_tokens:
        return [text]
    pieces: list[str] = []
    current = ""
    for sentence in split_sentences(text):
        for part in _cut_by_words(sentence, max_tokens, count):
            joined = f"{current} {part}".strip()
            if current and count(joined) > max_tokens:
                pieces.append(current)
                current = part
            else:
                current = joined
    if current:
        pieces.append(current)
    return pieces


def _cut_by_words(sentence: str, max_tokens: int, count: TokenCounter) -> list[str]:
    if count(sentence) <= max_tokens:
        return [sentence]
    words, parts, current = sentence.split(), [], []
    for word in words:
        if current and count(" ".join(current + [word])) > max_tokens:
            parts.append(" ".join(current))
            current = []
        current.append(word)
    if current:
        parts.append(" ".join(current))
    return parts


def _word_count(text: str) -> int:
    return len(text.split())


def merge_short(pieces: list[Paragraph], max_tokens: int, count: TokenCounter) -> list[Paragraph]:
    """Join pieces under MIN_WORDS to the next one (the last to the one before)."""
    merged: list[Paragraph] = []
    pending: Paragraph | None = None
    for piece in pieces:
        if pending is not None:
            joined = f"{pending.text} {piece.text}"
            if count(joined) <= max_tokens:
                piece = Paragraph(text=joined, time=pending.time or piece.time)
            else:
                merged.append(pending)
            pending = None
        if _word_count(piece.text) < MIN_WORDS:
            pending = piece
        else:
            merged.append(piece)
    if pending is not None:
        if merged and count(f"{merged[-1].text} {pending.text}") <= max_tokens:
            merged[-1] = Paragraph(text=f"{merged[-1].text} {pending.text}", time=merged[-1].time)
        else:
            merged.append(pending)
    return merged


def speech_passages(speech: Speech, max_tokens: int, count: TokenCounter = approximate_tokens) -> list[Passage]:
    pieces = [
        Paragraph(text=piece, time=paragraph.time or speech.time)
        for paragraph in speech.paragraphs
        for piece in split_long(paragraph.text, max_tokens, count)
    ]
    pieces = merge_short(pieces, max_tokens, count)
    reference = format_reference(speech.column)
    citation = format_citation(speech.house, speech.section, speech.date, speech.column)
    return [
        Passage(
            id=f"{speech.id}#{n}",
            speech_id=speech.id,
            position=n,
            text=piece.text,
            speaker=speech.speaker,
            house=speech.house,
            section=speech.section,
            date=speech.date,
            time=piece.time,
            debate=speech.debate,
            major_heading=speech.major_heading,
            minor_heading=speech.minor_heading,
            column=speech.column,
            reference=reference,
            citation=citation,
            session=speech.session,
            chamber=speech.chamber,
            procedural=speech.procedural,
            url=speech.url,
        )
        for n, piece in enumerate(pieces)
    ]


def passages(speeches: Iterator[Speech], max_tokens: int, count: TokenCounter = approximate_tokens) -> Iterator[Passage]:
    for speech in speeches:
        yield from speech_passages(speech, max_tokens, count)

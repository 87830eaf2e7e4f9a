"""Speeches -> passages: one per paragraph, each small enough for the model.

A paragraph longer than the model reads is split at sentence boundaries
into consecutive passages; a fragment too short to stand alone (a
"rose—", a one-line "Oh!", the tail of a split) is joined to a neighbour
within its speech. Ids are "<speech id>#<n>", n from 0, so they are stable
across rebuilds of the same input with the same model.
"""

from __future__ import annotations

import re
from typing import Callable

from indexer.sources.records import Paragraph, Passage, Speech
from indexer.sources.references import format_citation, format_reference

MIN_WORDS = 8
TokenCounter = Callable[[str], int]

# Words that end in a full stop without ending a sentence in Hansard.
_ABBREVIATIONS = {
    "mr", "mrs", "ms", "dr", "st", "hon", "rt", "no", "nos", "col", "cols", "cc", "c", "vol",
    "e.g", "i.e", "etc", "cf", "para", "paras", "art", "sch", "reg", "viz", "gen", "lt", "col", "sq",
}
_SENTENCE_END = re.compile(r"(?<=[.!?…])[\"”’)]*\s+(?=[\"“‘(\[A-Z0-9£$€])")
_LAST_WORD_WINDOW = 100  # characters before a possible sentence break searched for its last word


def approximate_tokens(text: str) -> int:
    """Word-piece count estimate for when no tokenizer is at hand."""
    return int(len(text.split()) * 1.4) + 2


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) character offsets of each sentence of text, surrounding space left out."""
    spans, start = [], 0
    for m in _SENTENCE_END.finditer(text):
        # Only the word before the break matters: look at a short window, not
        # all the text since the last break (a long run of "Mr." must not make
        # this quadratic).
        candidate = text[max(start, m.start() - _LAST_WORD_WINDOW) : m.start()].rstrip()
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
    """Sentence-bounded pieces of at most max_tokens (one over-long sentence is cut by words).

    Linear in the length of the text, however long the paragraph: each
    sentence (or word-cut part of one) is counted once, and a piece's size is
    the sum of its parts' counts. Word-piece counts add up over a space (the
    tokenizer splits on white space first), so the pieces are the same as
    counting every candidate piece whole; each piece is still counted whole
    once, and cut again should a counter not add up.
    """
    if count(text) <= max_tokens:
        return [text]
    overhead = count("")  # special tokens, counted once a piece
    pieces: list[list[str]] = []
    current: list[str] = []
    size = overhead
    for sentence in split_sentences(text):
        for part, tokens in _cut_by_words(sentence, max_tokens, count):
            cost = tokens - overhead
            if current and size + cost > max_tokens:
                pieces.append(current)
                current, size = [], overhead
            current.append(part)
            size += cost
    if current:
        pieces.append(current)
    return [piece for parts in pieces for piece in _checked(parts, max_tokens, count)]


def _checked(parts: list[str], max_tokens: int, count: TokenCounter) -> list[str]:
    """The parts as one piece if it fits, else cut greedily, counting each candidate piece whole."""
    joined = " ".join(parts)
    if len(parts) == 1 or count(joined) <= max_tokens:
        return [joined]
    pieces, current = [], ""
    for part in parts:
        candidate = f"{current} {part}" if current else part
        if current and count(candidate) > max_tokens:
            pieces.append(current)
            current = part
        else:
            current = candidate
    return pieces + [current]


def _cut_by_words(sentence: str, max_tokens: int, count: TokenCounter) -> list[tuple[str, int]]:
    """(part, its token count): the sentence in runs of whole words that fit (a word longer than that is cut)."""
    tokens = count(sentence)
    if tokens <= max_tokens:
        return [(sentence, tokens)]
    words, parts, i = sentence.split(), [], 0
    # Every word is at least one word-piece, so no run that fits is longer.
    longest = max(1, max_tokens - count(""))
    while i < len(words):
        first = count(words[i])
        if first > max_tokens:
            parts.extend(_cut_by_characters(words[i], max_tokens, count))
            i += 1
            continue
        # The longest run from word i that fits, by bisection: a few counts
        # of at most max_tokens words each, instead of one per word.
        fits, fits_tokens, too_long = i + 1, first, min(len(words), i + longest) + 1
        while too_long - fits > 1:
            middle = (fits + too_long) // 2
            tokens = count(" ".join(words[i:middle]))
            if tokens <= max_tokens:
                fits, fits_tokens = middle, tokens
            else:
                too_long = middle
        parts.append((" ".join(words[i:fits]), fits_tokens))
        i = fits
    return parts


def _cut_by_characters(word: str, max_tokens: int, count: TokenCounter) -> list[tuple[str, int]]:
    """A "word" of more than max_tokens word-pieces (junk with no spaces) in pieces that fit."""
    parts, start = [], 0
    while start < len(word):
        rest = len(word) - start
        # Gallop, then bisect: the cut costs counts proportional to the piece, not the rest of the word.
        fits, fits_tokens, too_long, probe = 0, 0, None, max_tokens
        while too_long is None:
            size = min(probe, rest)
            tokens = count(word[start : start + size])
            if tokens > max_tokens:
                too_long = size
            elif size == rest:
                fits, fits_tokens, too_long = size, tokens, size + 1
            else:
                fits, fits_tokens, probe = size, tokens, probe * 2
        while too_long - fits > 1:
            middle = (fits + too_long) // 2
            tokens = count(word[start : start + middle])
            if tokens <= max_tokens:
                fits, fits_tokens = middle, tokens
            else:
                too_long = middle
        if fits == 0:  # one character over the limit: cannot be cut finer
            fits, fits_tokens = 1, count(word[start : start + 1])
        parts.append((word[start : start + fits], fits_tokens))
        start += fits
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
            debate_id=speech.debate_id,
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

"""What a file's bytes are: text in which encoding, or not text at all.

Sources come from many hands: UTF-8 (with or without a byte-order mark),
UTF-16 from Windows tools, Windows-1252 exports, ParlParse XML declaring
ISO-8859-1, and now and then a file whose declaration does not match its
bytes, or something that is not text at all (an image, an archive). This
module tells them apart from the bytes, so that a reader either decodes the
file correctly or says exactly why it cannot.
"""

from __future__ import annotations

import codecs
import re
from pathlib import Path
from typing import Callable, Optional

from indexer.sources.errors import SourceError, SourceWarning

# Longest first: the UTF-32-LE mark begins with the UTF-16-LE one.
_BOMS = [
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
]
# Formats people save by mistake where text is expected, by their first bytes.
_MAGIC = [
    (b"\x89PNG\r\n\x1a\n", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF87a", "a GIF image"),
    (b"GIF89a", "a GIF image"),
    (b"%PDF-", "a PDF document"),
    (b"PK\x03\x04", "a ZIP archive (or a .docx/.xlsx/.odt document)"),
    (b"\x1f\x8b", "a gzip-compressed file"),
    (b"SQLite format 3\x00", "an SQLite database"),
    (b"\x7fELF", "an executable"),
]
_CONTROL = set(range(0x00, 0x09)) | {0x0B, 0x0E, 0x0F} | set(range(0x10, 0x1B)) | set(range(0x1C, 0x20)) | {0x7F}
_XML_DECLARATION = re.compile(rb"^\s*<\?xml[^>]*?\bencoding\s*=\s*[\"']([A-Za-z0-9._:-]+)[\"']")
_LATIN = {"latin-1", "iso8859-1", "cp1252", "iso8859-15"}  # codecs.lookup names
_NAMES = {"utf-8": "UTF-8", "cp1252": "Windows-1252"}


def binary_kind(head: bytes) -> Optional[str]:
    """Why the file's first bytes are not text (e.g. "a PNG image"), or None if they may be."""
    for magic, kind in _MAGIC:
        if head.startswith(magic):
            return kind
    if text_codec(head) is not None:
        return None  # UTF-16/32 text is full of NUL bytes
    if b"\x00" in head:
        return "contains NUL bytes"
    controls = sum(1 for byte in head if byte in _CONTROL)
    if head and controls > len(head) // 10:
        return "mostly control characters"
    return None


def text_codec(head: bytes) -> Optional[str]:
    """The codec a byte-order mark (or the NUL pattern of BOM-less UTF-16) names; None for 8-bit text."""
    for bom, codec in _BOMS:
        if head.startswith(bom):
            return codec
    sample = head[:512]
    sample = sample[: len(sample) - len(sample) % 2]
    if len(sample) >= 8:
        even_nul = sample[0::2].count(0) / (len(sample) // 2)
        odd_nul = sample[1::2].count(0) / (len(sample) // 2)
        if odd_nul > 0.9 and even_nul < 0.1:
            return "utf-16-le"  # ASCII text as UTF-16 little-endian: every second byte is NUL
        if even_nul > 0.9 and odd_nul < 0.1:
            return "utf-16-be"
    return None


def decode_head(head: bytes) -> str:
    """The first bytes as text, for telling the format (a character cut at the end is replaced)."""
    codec = text_codec(head)
    if codec in ("utf-16", "utf-16-le", "utf-16-be"):
        head = head[: len(head) - len(head) % 2]
    elif codec == "utf-32":
        head = head[: len(head) - len(head) % 4]
    return head.decode(codec or "utf-8-sig", errors="replace").lstrip("\ufeff")


def decode_text(path: Path, data: bytes, report: Callable[[SourceError], None]) -> str:
    """A text file's content: UTF-8/16/32 as marked, else UTF-8, else Windows-1252 (said in a warning)."""
    codec = text_codec(data[:4096])
    if codec is not None:
        return _strict(path, data, codec).lstrip("\ufeff")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = _line_of(data, err.start)
        try:
            text = data.decode("cp1252")
        except UnicodeDecodeError:
            raise SourceError(path, f"not UTF-8, UTF-16 or Windows-1252 text (byte {err.start})", line=line) from None
        # Windows exports of Hansard text are common; cp1252 is what they use.
        report(SourceWarning(path, "not UTF-8 (first bad byte on this line); read as Windows-1252", line=line))
        return text


def xml_text_codec(path: Path, data: bytes, report: Callable[[SourceError], None]) -> Optional[str]:
    """The codec to decode an XML file with ourselves, or None to let the parser follow its declaration.

    None for the usual case (the declaration, or its absence, matches the
    bytes). Otherwise the bytes win over a declaration they contradict, and
    the file is read with a warning: UTF-8 declared as ISO-8859-1 (which
    would turn every "é" into "Ã©"), Windows-1252 declared as UTF-8 (which
    the parser refuses), 8-bit text declared as UTF-16.
    """
    codec = text_codec(data[:4096])
    if codec is not None:
        return codec  # a byte-order mark, or UTF-16 by its shape: the declaration cannot be right otherwise
    match = _XML_DECLARATION.match(data[:1024])
    declared_name = match.group(1).decode("ascii") if match else "UTF-8"
    try:
        declared = codecs.lookup(declared_name).name
    except LookupError:
        declared = None
    if declared is None or declared.startswith(("utf-16", "utf-32")):
        actual = "utf-8" if _utf8_error(data) is None else "cp1252"
        said = f"an unknown encoding, {declared_name}," if declared is None else f"encoding {declared_name}"
        report(SourceWarning(path, f"declares {said} but is 8-bit text; read as {_NAMES[actual]}"))
        return actual
    if data.isascii():
        return None
    utf8_error = _utf8_error(data)
    if declared == "utf-8":
        if utf8_error is None:
            return None
        line = _line_of(data, utf8_error)
        try:
            data.decode("cp1252")
        except UnicodeDecodeError:
            return None  # not Windows text either: the parser reports where it breaks
        said = "declares encoding UTF-8" if match else "has no XML declaration (so is UTF-8 by rule)"
        report(SourceWarning(path, f"{said} but is not UTF-8 (first bad byte on this line); read as Windows-1252", line=line))
        return "cp1252"
    if declared in _LATIN and utf8_error is None:
        report(SourceWarning(path, f"declares encoding {declared_name} but is UTF-8; read as UTF-8"))
        return "utf-8"
    return None


def decode_strict(path: Path, data: bytes, codec: str) -> str:
    return _strict(path, data, codec).lstrip("\ufeff")


def _strict(path: Path, data: bytes, codec: str) -> str:
    try:
        return data.decode(codec)
    except UnicodeDecodeError as err:
        name = "UTF-16" if codec.startswith("utf-16") else codec.upper()
        raise SourceError(path, f"not valid {name} text (byte {err.start})", line=_line_of_decoded(data, err.start, codec)) from None


def _utf8_error(data: bytes) -> Optional[int]:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as err:
        return err.start
    return None


def _line_of(data: bytes, offset: int) -> int:
    return data.count(b"\n", 0, offset) + 1


def _line_of_decoded(data: bytes, offset: int, codec: str) -> Optional[int]:
    try:
        return data[:offset].decode(codec, errors="replace").count("\n") + 1
    except LookupError:
        return None

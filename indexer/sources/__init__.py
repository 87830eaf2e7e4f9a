"""Source records: from files of debates to the passages that are embedded and stored.

Data flows one way through this package:

- `readers/`: find files, tell their format from their content (`encoding.py`
  tells encodings and binary files apart), and read `Speech` records. To add
  an input format, write one reader module there (a `looks_like_*` test of
  the file's first characters and a `read_*` generator of speeches) and
  register it in `readers/__init__.py`'s `detect_format` and `read_source`.
  Formats: ParlParse XML, contribution pages, Parliament's search records
  (whose speakers and dates fill the pages', `fill_from_records`), JSONL, CSV.
- `records.py`: `Speech` (what every reader yields, and the JSONL schema) and
  `Passage` (what stores hold and the service returns), with the bounds and
  checks a hostile file meets.
- `references.py`: Hansard column references (`Column`) and citations.
- `passages.py`: speeches cut into passages the model reads whole.
- `members.py`: parties by date from ParlParse members data.
- `vocabulary.py`: houses, party names, the sitting a speech belongs to, which
  readers, stores and the query parser share.
- `normalise.py`, `errors.py`: text clean-up, and how a bad file is reported.
- `download.py`: ParlParse XML from TheyWorkForYou.
"""

"""Indexing: source files -> speech records -> passages -> vectors -> a store.

- `sources/`: everything about source records: the readers (one module a
  format), the records they yield, column references, passages, members;
- `store/`: where passages and vectors are kept (the embedded index
  directory, or PostgreSQL), behind one reading and one writing interface;
- `build.py`: one indexing run, from files to a store's writer.
"""

"""The PostgreSQL store: passages, their vectors (pgvector) and full-text vectors in one table, speeches in another.

- `schema.py`: connections, the versioned schema (migrations), bulk loading;
- `reading.py`: `PostgresStore`, for searching (on a read replica if given);
- `writing.py`: `PostgresWriter`, batches of whole sittings, one transaction each.
"""

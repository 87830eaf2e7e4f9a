"""The embedded store: an index directory of versions, each a FAISS index, a SQLite file (passages and FTS5) and a manifest.

- `layout.py`: the directory (CURRENT, versions, manifest, lock) and the checks made before a version is opened;
- `reading.py`: `EmbeddedStore`, one live version opened for searching;
- `writing.py`: `EmbeddedWriter`, one run's writes, committed as a new version.
"""

from indexer.store.embedded.layout import CURRENT, LOCK, MANIFEST, METADATA, VECTORS, is_index, live_version, lock_index
from indexer.store.embedded.reading import EmbeddedStore
from indexer.store.embedded.writing import ANN_THRESHOLD, EmbeddedWriter, write_index

__all__ = ["ANN_THRESHOLD", "CURRENT", "LOCK", "MANIFEST", "METADATA", "VECTORS", "EmbeddedStore", "EmbeddedWriter",
           "is_index", "live_version", "lock_index", "write_index"]

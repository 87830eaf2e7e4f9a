"""The running service's state: the loaded index, its reloads, and the cap on heavy work.

Requests take the current Searcher once, at their start, and keep it: a
reload builds a new Searcher beside the old and swaps one reference, so a
request in flight finishes on the index it started with and none fails
during the swap. A reload happens when the index directory's live version
changes (watched every `reload_interval` seconds), or on an admin call. On
PostgreSQL the "version" is a generation number every write bumps: a reload
there refreshes what a Searcher caches (known sections and parties, counts).
"""

from __future__ import annotations

import logging
import threading
from contextlib import contextmanager
from typing import Iterator, Optional

from embeddings.encoder import Encoder, load_encoder
from indexer.store import QueryTimeout
from service.observability import Metrics
from service.search import Searcher
from service.settings import Settings

log = logging.getLogger("hansard")

# How long a store replaced by a reload stays open: longer than any request
# may run (queue and query limits are 10 s each by default), so requests
# still on it finish; then its database connections are closed.
RETIRE_AFTER = 30.0


class Unavailable(Exception):
    """The service cannot answer now (loading, busy, too slow); HTTP 503 with Retry-After."""

    def __init__(self, message: str, retry_after: int = 5):
        super().__init__(message)
        self.retry_after = retry_after


class ServiceState:
    def __init__(self, settings: Settings, encoder: Optional[Encoder], metrics: Metrics):
        self.settings = settings
        self.metrics = metrics
        self.encoder = encoder
        self.searcher: Optional[Searcher] = None
        self.version: Optional[str] = None  # the live version directory the searcher has open
        self.error: Optional[str] = None  # why loading failed, when it did
        self._reload_lock = threading.Lock()
        self._encode_lock = threading.Lock()  # the model is used by one thread at a time
        self._slots = threading.BoundedSemaphore(settings.max_concurrent_searches)
        self._stop = threading.Event()
        self._watcher: Optional[threading.Thread] = None

    # ------------------------------------------------------------ loading

    def load(self) -> None:
        """Load the model (unless given) and the index's live version. Raises on failure."""
        try:
            import faiss

            # One thread per request for the model and FAISS alike: with more,
            # they fight each other and other requests for 2 cores.
            faiss.omp_set_num_threads(self.settings.threads)
            if self.encoder is None:
                self.encoder = load_encoder(self.settings.model, use_cache=False, threads=self.settings.threads)
            self.reload(reason="start")
        except Exception as err:
            self.error = str(err)
            self.metrics.searchable.set(0)
            raise

    def reload(self, reason: str = "admin") -> bool:
        """Open the live index version if it differs from the loaded one; True when a new one was loaded.

        A version that fails to open is logged and the current one kept.
        """
        with self._reload_lock:
            # The live version, asked of the open store (on PostgreSQL, over this
            # thread's connection); before the first load there is nothing to compare.
            version = self.searcher.index.live_version() if self.searcher is not None else None
            if self.searcher is not None and version == self.version:
                return False
            try:
                searcher = Searcher.open(self.settings.store, self.encoder, self._encode_lock)
                searcher.breakdown  # computed now, not by the first /stats
            except Exception as err:
                self.metrics.reloads.labels("failed").inc()
                if self.searcher is None:
                    raise
                log.error("index reload failed; still serving the previous version", extra={"fields": {
                    "index": self.settings.location, "version": version, "error": str(err), "reason": reason}})
                return False
            previous, retired = self.version, self.searcher
            version = searcher.index.version  # what was opened, should the live version have moved meanwhile
            self.searcher, self.version, self.error = searcher, version, None
            if retired is not None:
                closing = threading.Timer(RETIRE_AFTER, retired.index.close)
                closing.daemon = True
                closing.start()
            manifest = searcher.index.manifest
            self.metrics.passages.set(manifest.passages)
            self.metrics.speeches.set(manifest.speeches)
            self.metrics.searchable.set(1)
            self.metrics.reloads.labels("loaded").inc()
            log.info("index loaded", extra={"fields": {"index": self.settings.location, "version": version,
                                                      "previous": previous, "passages": manifest.passages,
                                                      "reason": reason}})
            return True

    def start_watching(self) -> None:
        if self.settings.reload_interval <= 0 or self._watcher is not None:
            return
        self._watcher = threading.Thread(target=self._watch, name="index-watcher", daemon=True)
        self._watcher.start()

    def stop(self) -> None:
        self._stop.set()

    def _watch(self) -> None:
        while not self._stop.wait(self.settings.reload_interval):
            try:
                if self.searcher is not None:
                    self.reload(reason="new version")  # which does nothing while the version is the same
            except Exception as err:  # a half-written directory, say: try again next time
                log.warning("index watch failed", extra={"fields": {"error": str(err)}})

    # ------------------------------------------------------------ serving

    def current(self) -> Searcher:
        searcher = self.searcher
        if searcher is None:
            if self.error:
                raise Unavailable(f"the index could not be loaded: {self.error}", retry_after=60)
            raise Unavailable("the service is starting: the model and index are loading")
        return searcher

    @contextmanager
    def heavy_slot(self) -> Iterator[None]:
        """One of `max_concurrent_searches` slots for a search, waiting at most `queue_timeout` seconds.

        Past the wait the request is refused (503) rather than queued without
        bound: under overload, fast refusals keep the service answering.
        """
        if not self._slots.acquire(timeout=self.settings.queue_timeout):
            self.metrics.refused.labels("busy").inc()
            raise Unavailable(f"busy: {self.settings.max_concurrent_searches} searches already running; retry shortly", 2)
        try:
            yield
        finally:
            self._slots.release()

    @contextmanager
    def deadline(self, searcher: Searcher) -> Iterator[None]:
        """Abort this thread's index queries once `query_timeout` seconds have passed (503)."""
        limit = self.settings.query_timeout
        try:
            with searcher.index.deadline(limit):
                yield
        except QueryTimeout as err:
            self.metrics.refused.labels("timeout").inc()
            raise Unavailable(f"the query took longer than {limit:g} s and was stopped; narrow it with filters", 1) from err

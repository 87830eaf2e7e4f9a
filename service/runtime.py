"""The running service's state: the loaded index, its reloads, and the cap on heavy work.

Requests lease the current Searcher once, at their start, and keep it: a
reload builds a new Searcher beside the old and swaps one reference, so a
request in flight finishes on the index it started with and none fails
during the swap. The replaced Searcher's store (SQLite connections, the
memory-mapped vectors, database connections) is closed as soon as the last
request leasing it ends, or at once when none does: however often writes
come, memory and open files stay flat, without waiting for a garbage
collection. A reload happens when the index directory's live version
changes (watched every `reload_interval` seconds), or on an admin call. On
PostgreSQL the "version" is a generation number every write bumps: a reload
there refreshes what a Searcher caches (known sections and parties, counts).
"""

from __future__ import annotations

import logging
import threading
import weakref
from contextlib import contextmanager
from typing import Iterator, Optional

from embeddings.encoder import Encoder, load_encoder
from indexer.store import QueryTimeout
from service.observability import Metrics
from service.search import Searcher
from service.settings import Settings

log = logging.getLogger("hansard")

# A store replaced by a reload while requests still lease it is closed when
# the last of them ends, or after this many seconds at the most: longer than
# any request may run (queue and query limits are 10 s each by default).
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
        self.write_lock = threading.Lock()  # admin writes, one at a time
        self._leases: dict[Searcher, int] = {}  # Searcher -> requests using it now
        self._lease_lock = threading.Lock()  # held to lease, to give back, and to swap Searchers
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
            with self._lease_lock:
                self.searcher, self.version, self.error = searcher, version, None
                in_use = retired in self._leases
            if retired is not None and not in_use:
                retired.close()
            elif retired is not None:  # closed by its last request's end; this in case one never ends
                closing = threading.Timer(RETIRE_AFTER, _close_if_alive, args=(weakref.ref(retired),))
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
        """The app is stopping (its requests are done): stop watching, and close the store."""
        self._stop.set()
        with self._reload_lock, self._lease_lock:  # (a reload under way finishes first, and is closed here)
            searcher, self.searcher = self.searcher, None
            in_use = searcher in self._leases
        if searcher is not None and not in_use:
            searcher.close()

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
    def lease(self, required: bool = True) -> Iterator[Optional[Searcher]]:
        """The current Searcher, kept open for the block even if a reload replaces it meanwhile.

        Unavailable (503) when none is loaded, unless not `required`: then None.
        """
        with self._lease_lock:
            searcher = self.current() if required else self.searcher
            if searcher is not None:
                self._leases[searcher] = self._leases.get(searcher, 0) + 1
        try:
            yield searcher
        finally:
            if searcher is not None:
                self._give_back(searcher)

    def _give_back(self, searcher: Searcher) -> None:
        with self._lease_lock:
            left = self._leases.pop(searcher) - 1
            if left:
                self._leases[searcher] = left
            retired = not left and searcher is not self.searcher
        if retired:  # replaced while this request ran on it, and the last such request
            searcher.close()

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


def _close_if_alive(ref: "weakref.ref[Searcher]") -> None:
    searcher = ref()
    if searcher is not None and not searcher.closed:
        log.warning("a replaced index version was still in use after RETIRE_AFTER seconds; closing it",
                    extra={"fields": {"version": searcher.index.version, "seconds": RETIRE_AFTER}})
        searcher.close()

"""Request ids, structured request logs and Prometheus metrics.

Every request gets an id: the caller's X-Request-ID when it is a sane token,
else a fresh one. It is echoed in the response's X-Request-ID header, put in
the JSON log line written for the request, and in the body of a 500, so a
portal's bug report can be matched to the service's logs.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import time
import uuid
from datetime import datetime, timezone

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client import ProcessCollector

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)

access_log = logging.getLogger("hansard.access")
log = logging.getLogger("hansard")


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time, level, logger, message, and the record's `fields`."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            **getattr(record, "fields", {}),
        }
        if record.exc_info:
            entry["error"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


def configure_logging(level: str = "info") -> None:
    """JSON lines on stderr for the service's logs and uvicorn's own."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    logging.getLogger("uvicorn.access").disabled = True  # our access log carries more


class Metrics:
    """The service's metrics, in a registry of its own (one per app: tests build many apps)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        ProcessCollector(registry=self.registry)  # resident memory, CPU seconds, open files
        self.requests = Counter("hansard_requests", "HTTP requests answered", ["method", "route", "status"],
                                registry=self.registry)
        self.latency = Histogram("hansard_request_duration_seconds", "Time to answer a request", ["route"],
                                 buckets=LATENCY_BUCKETS, registry=self.registry)
        self.in_flight = Gauge("hansard_requests_in_flight", "Requests being answered now", registry=self.registry)
        self.refused = Counter("hansard_requests_refused", "Requests refused: busy, a query ran too long, or the store could not be reached",
                               ["reason"], registry=self.registry)
        self.passages = Gauge("hansard_index_passages", "Passages in the loaded index", registry=self.registry)
        self.speeches = Gauge("hansard_index_speeches", "Speeches in the loaded index", registry=self.registry)
        self.searchable = Gauge("hansard_index_searchable", "1 when an index is loaded and searchable",
                                registry=self.registry)
        self.reloads = Counter("hansard_index_reloads", "Index versions loaded since start", ["outcome"],
                               registry=self.registry)

    def exposition(self) -> tuple[bytes, str]:
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


def request_id_of(request: Request) -> str:
    incoming = request.headers.get("x-request-id", "")
    return incoming if _REQUEST_ID.match(incoming) else uuid.uuid4().hex[:16]


def observe_requests(app: FastAPI, metrics: Metrics) -> None:
    """Count, time and log every request; give each an id."""

    @app.middleware("http")
    async def log_count_and_time(request: Request, call_next):
        request_id = request.state.request_id = request_id_of(request)
        started = time.perf_counter()
        metrics.in_flight.inc()
        status = 500
        try:
            response = await call_next(request)
            status = response.status_code
        except Exception:
            log.exception("unhandled error", extra={"fields": {"request_id": request_id}})
            response = JSONResponse(status_code=500, content={
                "message": f"internal error; quote request id {request_id} when reporting it"})
        finally:
            metrics.in_flight.dec()
            elapsed = time.perf_counter() - started
            # The route's template (/speeches/{speech_id}), not the raw path: bounded label values.
            route = getattr(request.scope.get("route"), "path", None) or "unmatched"
            metrics.requests.labels(request.method, route, str(status)).inc()
            metrics.latency.labels(route).observe(elapsed)
            access_log.info(f"{request.method} {request.url.path} {status}", extra={"fields": {
                "request_id": request_id, "method": request.method, "path": request.url.path,
                "query": request.url.query, "status": status, "ms": round(elapsed * 1000, 2), "route": route,
                "client": request.client.host if request.client else None,
                "user_agent": request.headers.get("user-agent"),
            }})
        response.headers["X-Request-ID"] = request_id
        return response

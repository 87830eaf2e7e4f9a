"""Service configuration, from arguments or HANSARD_* environment variables."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Optional

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from embeddings.encoder import DEFAULT_MODEL
from indexer.store import Location, database_url, redact

_ORIGIN = re.compile(r"^https?://[A-Za-z0-9.\-\[\]:]+$")
MIN_TOKEN_CHARS = 16


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="HANSARD_")

    index: Path = Path("index")  # HANSARD_INDEX
    model: str = DEFAULT_MODEL  # HANSARD_MODEL
    # One thread per request: with more, torch's threads fight under load
    # (13 ms -> 242 ms a query seen on a busy 2-core machine).
    threads: int = 1  # HANSARD_THREADS
    # Origins (scheme://host[:port]) whose pages may call the JSON API from a
    # browser (CORS) and frame /embed. Default: none. Comma- or space-separated
    # in HANSARD_ALLOWED_ORIGINS; "*" allows any.
    allowed_origins: Annotated[list[str], NoDecode] = []
    # Host names (host or host:port) that the MCP endpoint at /mcp answers
    # besides this machine's (localhost, 127.0.0.1, [::1]): a check against
    # DNS rebinding. Comma- or space-separated in HANSARD_MCP_ALLOWED_HOSTS;
    # "*" turns the check off (behind a proxy that checks Host itself).
    mcp_allowed_hosts: Annotated[list[str], NoDecode] = []
    # At most this many searches run at once (more only queue for the CPU);
    # a request that waits longer than queue_timeout for a slot gets 503.
    max_concurrent_searches: int = Field(default=4, ge=1, le=256)  # HANSARD_MAX_CONCURRENT_SEARCHES
    queue_timeout: float = Field(default=10.0, gt=0)  # seconds; HANSARD_QUEUE_TIMEOUT
    # An index query running longer than this is stopped (503): one slow
    # query must not hold a slot for ever.
    query_timeout: float = Field(default=10.0, gt=0)  # seconds; HANSARD_QUERY_TIMEOUT
    # How often to look for a new index version (written by `hansard-search
    # index`) and load it while serving; 0 turns watching off.
    reload_interval: float = Field(default=2.0, ge=0)  # seconds; HANSARD_RELOAD_INTERVAL
    # Set to enable the write and admin endpoints (/admin/...), which then
    # need `Authorization: Bearer <token>`. Unset or empty (default): read-only.
    admin_token: Optional[SecretStr] = None  # HANSARD_ADMIN_TOKEN, MIN_TOKEN_CHARS at least
    # What one request may hold the server to. A body larger than max_body_mb
    # is refused (413) unread, or as soon as it passes the limit when it comes
    # without a length; a request's head (line and headers) must arrive within
    # header_timeout seconds of the connection opening or of the previous
    # answer on it; an idle kept-alive connection is closed after keep_alive seconds.
    max_body_mb: float = Field(default=8.0, gt=0)  # HANSARD_MAX_BODY_MB
    header_timeout: float = Field(default=15.0, gt=0)  # seconds; HANSARD_HEADER_TIMEOUT
    keep_alive: float = Field(default=5.0, gt=0)  # seconds; HANSARD_KEEP_ALIVE
    # Serve from PostgreSQL (with pgvector) instead of the embedded index
    # directory: postgresql://user:password@host:port/database. Writes (admin
    # API) go to it; queries go to database_read_url (a read-only replica) when set.
    database_url: Optional[str] = None  # HANSARD_DATABASE_URL
    database_read_url: Optional[str] = None  # HANSARD_DATABASE_READ_URL

    @field_validator("allowed_origins", mode="before")
    @classmethod
    def _origins(cls, value):
        if isinstance(value, str):
            value = value.replace(",", " ").split()
        origins = [str(origin).strip().rstrip("/") for origin in value or [] if str(origin).strip()]
        for origin in origins:
            if origin != "*" and not _ORIGIN.match(origin):
                raise ValueError(f"allowed origin {origin!r} is not scheme://host[:port] (no path), nor *")
        return origins

    @field_validator("mcp_allowed_hosts", mode="before")
    @classmethod
    def _hosts(cls, value):
        if isinstance(value, str):
            value = value.replace(",", " ").split()
        return [str(host).strip() for host in value or [] if str(host).strip()]

    @field_validator("admin_token", mode="before")
    @classmethod
    def _admin_token(cls, value):
        if isinstance(value, SecretStr):
            value = value.get_secret_value()
        if value is None or value == "":
            return None  # HANSARD_ADMIN_TOKEN="" is read-only, as unset is
        if isinstance(value, str) and len(value) < MIN_TOKEN_CHARS:
            raise ValueError(f"the admin token must be at least {MIN_TOKEN_CHARS} characters long, not {len(value)}")
        return value

    @field_validator("database_url", "database_read_url", mode="before")
    @classmethod
    def _database_url(cls, value):
        return database_url(value)

    @property
    def store(self) -> Location:
        """The store to serve: the PostgreSQL database when one is given, else the index directory."""
        return Location(index_dir=self.index, database_url=self.database_url, read_url=self.database_read_url)

    @property
    def location(self) -> str:
        """Where the passages are, for logs: the index directory, or the database (no password)."""
        return redact(self.database_url) if self.database_url else str(self.index)

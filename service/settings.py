"""Service configuration, from arguments or HANSARD_* environment variables."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated

from pydantic import field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from embeddings.encoder import DEFAULT_MODEL

_ORIGIN = re.compile(r"^https?://[A-Za-z0-9.\-\[\]:]+$")


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

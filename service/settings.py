"""Service configuration, from arguments or HANSARD_* environment variables."""

from __future__ import annotations

from pathlib import Path

from pydantic_settings import BaseSettings, SettingsConfigDict

from embeddings.encoder import DEFAULT_MODEL


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="HANSARD_")

    index: Path = Path("index")  # HANSARD_INDEX
    model: str = DEFAULT_MODEL  # HANSARD_MODEL
    # One thread per request: with more, torch's threads fight under load
    # (13 ms -> 242 ms a query seen on a busy 2-core machine).
    threads: int = 1  # HANSARD_THREADS

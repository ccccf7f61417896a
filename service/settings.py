"""Settings for the API and the workers, from environment variables (prefix `DIFFEDITOR_`, plus
the conventional `REDIS_URL`). Every field has an embedded default, so `diffeditor serve` runs on a
fresh machine with nothing configured (embedded mode, demo model)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="DIFFEDITOR_", extra="ignore")

    # Queue. No REDIS_URL means embedded mode: in-process fakeredis and one in-process worker.
    redis_url: str | None = Field(None, validation_alias=AliasChoices("REDIS_URL", "DIFFEDITOR_REDIS_URL"))
    queue_name: str = "diffeditor"

    # Models (worker side). None means the demo model, said loudly in the log and in /readyz.
    model: str | None = None
    device: str | None = None  # None: cuda when available, else cpu
    dtype: str | None = None  # fp16 | bf16 | fp32; None: fp16 on CUDA, fp32 on CPU
    inversion_cache_mb: int = 8192  # one 768² inversion keeps ≈3.1 GB of K/V on the GPU

    # Store.
    store: Literal["local", "s3"] = "local"
    data_dir: Path = Path("./data")
    s3_bucket: str | None = None
    s3_endpoint_url: str | None = None
    s3_prefix: str = "diffeditor/"
    s3_presign: bool = False  # presigned result URLs instead of streaming through the API
    job_ttl_s: int = 24 * 3600  # jobs and results expire after this

    # Auth: sha256 hex digests of the accepted API keys, comma separated. Empty: open access.
    api_key_hashes: str = ""
    rate_limit_per_min: int = 60  # submissions per key per minute
    max_queued_per_key: int = 20
    max_queue_depth: int = 200

    # Limits on uploads.
    max_upload_bytes: int = 20 * 1024 * 1024
    max_request_bytes: int = 60 * 1024 * 1024
    max_pixels: int = 4096 * 4096
    min_side: int = 16
    max_steps: int = 100

    # Worker behaviour.
    job_timeout_s: int = 600
    heartbeat_s: int = 5
    watchdog_s: int = 15  # how often abandoned jobs are swept (the bound is well under 60 s)

    def key_hashes(self) -> set[str]:
        return {h.strip().lower() for h in self.api_key_hashes.split(",") if h.strip()}


@lru_cache
def get_settings() -> Settings:
    return Settings()

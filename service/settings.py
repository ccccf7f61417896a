"""Settings for the API and the workers, from environment variables (prefix `DIFFEDITOR_`, plus
the conventional `REDIS_URL`). Every field has an embedded default, so `diffeditor serve` runs on a
fresh machine with nothing configured (embedded mode, demo model)."""

from __future__ import annotations

import argparse
import sys
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from service.webhooks import signing
from service.webhooks.tls import tls_context


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="DIFFEDITOR_", extra="ignore")

    # Queue. No REDIS_URL means embedded mode: in-process fakeredis and one in-process worker.
    redis_url: str | None = Field(None, validation_alias=AliasChoices("REDIS_URL", "DIFFEDITOR_REDIS_URL"))
    queue_name: str = "diffeditor"

    # Models (worker side). None means the demo model, said loudly in the log and in /readyz.
    model: str | None = None
    device: str | None = None  # None: cuda when available, else cpu
    dtype: str | None = None  # fp16 | bf16 | fp32; None: fp16 on CUDA, fp32 on CPU
    # One 768² bf16 entry holds ≈3.2 GB (move) or ≈5.2 GB (appearance, paste: two images): K/V at the
    # injected steps and F_ref at the UNet's resolution (docs/operations.md).
    inversion_cache_mb: int = 8192
    batched_backward: bool = False  # both guidance gradients from one batched backward (engine/editor.py)
    kv_offload: bool = False  # K/V banks in pinned host memory, prefetched per step (engine/kv_offload.py)
    # torch.compile mode of the sampling UNet (engine/compiled.py); off until a GPU shows a gain
    compile: Literal["off", "default", "reduce-overhead", "max-autotune"] = "off"
    channels_last: bool = False  # the UNet in NHWC layout (cuDNN's fastest convolutions)
    # The working size of an edit that sends no max_resolution. None: the model's rule (the demo
    # model its training size, 128; real weights 768 on a GPU, 512 on a CPU). Reported in /v1/info.
    default_resolution: int | None = Field(None, ge=64, le=1024)
    cpu_threads: int | None = Field(None, ge=1)  # None: OMP_NUM_THREADS, else the cores the process may use

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

    # Jobs: deadlines (`deadline_s`), webhooks, step previews.
    # The longest deadline_s a submit may ask for, and the deadline of one that asks for none.
    # None: no server-wide deadline (a job waits in the queue until job_ttl_s).
    max_deadline_s: float | None = Field(None, gt=0)
    webhook_secret: str = ""  # Standard Webhooks signing secret ("whsec_<base64>" or plain text); empty: no webhooks
    webhook_allow_private: bool = False  # allow webhook URLs on loopback, private and link-local addresses
    webhook_timeout_s: float = Field(
        10.0, gt=0
    )  # an attempt's connect limit and limit between reads (2× bounds it all)
    webhook_retry_s: float = Field(900.0, ge=0)  # retries stop this long after an event's first attempt
    webhook_progress_interval_s: float = Field(0.5, ge=0)  # at most one progress webhook per job this often
    webhook_backoff_s: float = Field(1.0, gt=0)  # the first retry's delay; doubled each retry, capped at 5 min
    webhook_deliverer: bool = True  # deliver webhooks from a thread of the API process (service/webhooks)
    webhook_concurrency: int = Field(8, ge=1)  # deliveries in flight at once per deliverer
    # PEM certificates of the CAs https receivers may chain to, instead of certifi's (a private CA)
    webhook_ca_file: Path | None = None
    preview_every: int = Field(5, ge=0)  # a step preview every this many sampling steps; 0: none

    # Worker behaviour.
    job_timeout_s: int = 600
    heartbeat_s: int = 5
    watchdog_s: int = 15  # how often abandoned jobs are swept (the bound is well under 60 s)

    @field_validator("webhook_ca_file")
    @classmethod
    def _webhook_ca_file(cls, v: Path | None) -> Path | None:
        if v is not None:
            tls_context(v)  # raises for a file that is missing or holds no certificate
        return v

    @field_validator("webhook_secret")
    @classmethod
    def _webhook_secret(cls, v: str) -> str:
        signing.secret_key(v)  # raises for a malformed whsec_ secret
        return v

    def key_hashes(self) -> set[str]:
        return {h.strip().lower() for h in self.api_key_hashes.split(",") if h.strip()}


@lru_cache
def get_settings() -> Settings:
    return Settings()


# The settings a user reaches for first, also on the command line of `serve` and `worker`: each
# option sets the field of the same name and wins over its environment variable.
CLI_OPTIONS: dict[str, tuple[str, str]] = {
    "model": ("SPEC", "model-set folder, hub id, SD1.5 checkpoint file, demo or tiny-random (default: demo)"),
    "device": ("DEVICE", "cuda, cuda:N or cpu (default: cuda when available)"),
    "dtype": ("DTYPE", "fp16, bf16 or fp32 (default: fp16 on CUDA, fp32 on CPU)"),
    "default_resolution": ("N", "working size of edits that send no max_resolution (default: the model's)"),
    "cpu_threads": ("N", "intra-op threads on a CPU (default: OMP_NUM_THREADS, else the cores allowed)"),
    "data_dir": ("DIR", "local result store (default ./data)"),
    "redis_url": ("URL", "the queue's Redis (unset: embedded mode, for serve)"),
}


def add_cli_options(parser: argparse.ArgumentParser, names: tuple[str, ...] = tuple(CLI_OPTIONS)) -> None:
    for name in names:
        metavar, text = CLI_OPTIONS[name]
        env = "REDIS_URL" if name == "redis_url" else f"DIFFEDITOR_{name.upper()}"
        parser.add_argument(f"--{name.replace('_', '-')}", dest=name, metavar=metavar, help=f"{text}; env {env}")


def settings_from_args(args: argparse.Namespace, prog: str) -> Settings:
    """The environment's settings with the command line's options on top; a bad value exits 2
    with one line naming the option."""
    overrides = {name: value for name in CLI_OPTIONS if (value := getattr(args, name, None)) is not None}
    if not overrides:
        return get_settings()
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        err = exc.errors()[0]
        option = "--" + str(err["loc"][0]).replace("_", "-") if err["loc"] else "an option"
        print(f"{prog}: {option}: {err['msg']} (got {err.get('input')!r})", file=sys.stderr)
        raise SystemExit(2) from None

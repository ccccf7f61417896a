"""Fetching the real weights from the Hugging Face hub into the model-set layout (§1, §2.2).

    DEST/model_index.json, unet/, vae/, text_encoder/, tokenizer/, scheduler/   <- SD1.5 mirror (fp32 safetensors)
    DEST/image_encoder/                                                       <- h94/IP-Adapter models/image_encoder
    DEST/image_prompt/ip_sd15_64.bin                                          <- Adapter/DragonDiffusion model/ip_sd15_64.bin

The hub helpers here are shared with `engine.models` (hub ids): offline mode and an unreachable hub
are detected up front with a short timeout, so nothing waits on huggingface_hub's retries.
"""

from __future__ import annotations

import os
import shutil
import urllib.error
import urllib.request
from pathlib import Path

from engine.errors import ModelLoadError

SD15_REPO = "stable-diffusion-v1-5/stable-diffusion-v1-5"
# Only what the engine loads: fp32 safetensors of the three networks, configs, tokenizer, scheduler.
SD15_FILES = [
    "model_index.json",
    "unet/config.json",
    "unet/diffusion_pytorch_model.safetensors",
    "vae/config.json",
    "vae/diffusion_pytorch_model.safetensors",
    "text_encoder/config.json",
    "text_encoder/model.safetensors",
    "tokenizer/*",
    "scheduler/scheduler_config.json",
]
IMAGE_ENCODER_REPO = "h94/IP-Adapter"
IMAGE_ENCODER_SUBFOLDER = "models/image_encoder"
IMAGE_ENCODER_FILES = [f"{IMAGE_ENCODER_SUBFOLDER}/config.json", f"{IMAGE_ENCODER_SUBFOLDER}/model.safetensors"]
IMAGE_PROMPT_REPO = "Adapter/DragonDiffusion"
IMAGE_PROMPT_FILE = "model/ip_sd15_64.bin"
IMAGE_PROMPT_NAME = "ip_sd15_64.bin"

REACHABILITY_TIMEOUT_S = 3.0
_TRUE = {"1", "on", "yes", "true"}


def hub_offline() -> bool:
    """True when the environment forbids hub access (read now, not at import time)."""
    return any(os.environ.get(v, "").strip().lower() in _TRUE for v in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"))


def hub_endpoint() -> str:
    return os.environ.get("HF_ENDPOINT", "https://huggingface.co").rstrip("/")


def hub_reachable(timeout: float = REACHABILITY_TIMEOUT_S) -> bool:
    """One short HEAD request to the hub endpoint; any HTTP answer counts as reachable."""
    request = urllib.request.Request(hub_endpoint(), method="HEAD")
    try:
        with urllib.request.urlopen(request, timeout=timeout):
            return True
    except urllib.error.HTTPError:
        return True  # the server answered
    except (OSError, ValueError):
        return False


def hub_unavailable_reason() -> str | None:
    """Why the hub cannot be used now, or None when it can."""
    if hub_offline():
        return "HF_HUB_OFFLINE is set"
    if not hub_reachable():
        return f"{hub_endpoint()} is unreachable (no answer within {REACHABILITY_TIMEOUT_S:g}s)"
    return None


def download_models(dest: str | os.PathLike[str]) -> Path:
    """Download SD1.5, the CLIP image encoder and the image-prompt checkpoint into `dest`; return it.

    Fails at once with ModelLoadError when offline or when the hub does not answer.
    """
    dest = Path(dest).expanduser()
    reason = hub_unavailable_reason()
    if reason is not None:
        raise ModelLoadError(
            f"cannot download models into {dest}: {reason}. Run `diffeditor models download {dest}` on a machine "
            "with access to huggingface.co (unset HF_HUB_OFFLINE) and copy the folder here, or use the offline demo "
            f"model: `diffeditor demo-model {dest}`."
        )
    from huggingface_hub import hf_hub_download, snapshot_download
    from huggingface_hub.errors import HfHubHTTPError

    dest.mkdir(parents=True, exist_ok=True)
    staging = dest / ".download-staging"
    try:
        snapshot_download(SD15_REPO, allow_patterns=SD15_FILES, local_dir=dest)
        # These two are renamed into place, so a finished file is skipped on a rerun.
        if not (dest / "image_encoder" / "model.safetensors").is_file():
            snapshot_download(IMAGE_ENCODER_REPO, allow_patterns=IMAGE_ENCODER_FILES, local_dir=staging)
            _replace(staging / IMAGE_ENCODER_SUBFOLDER, dest / "image_encoder")
        if not (dest / "image_prompt" / IMAGE_PROMPT_NAME).is_file():
            hf_hub_download(IMAGE_PROMPT_REPO, IMAGE_PROMPT_FILE, local_dir=staging)
            (dest / "image_prompt").mkdir(exist_ok=True)
            _replace(staging / IMAGE_PROMPT_FILE, dest / "image_prompt" / IMAGE_PROMPT_NAME)
    except (HfHubHTTPError, OSError) as exc:
        raise ModelLoadError(
            f"downloading models into {dest} failed: {exc}. Rerun the same command to resume."
        ) from exc
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return dest


def _replace(src: Path, dst: Path) -> None:
    if dst.is_dir():
        shutil.rmtree(dst)
    elif dst.exists():
        dst.unlink()
    shutil.move(str(src), str(dst))

"""Loading the SD1.5 components, the CLIP image encoder and the image-prompt checkpoint (§1, §2.2).

CONTRACT (used by the rest of the engine; keep these names and meanings):

    load_models(spec, device=None, dtype=None, *, image_encoder=None, image_prompt=None,
                tokenizer=None, require_image_prompt=True) -> Models
        spec: "demo" (the shipped shapes-world model) | "tiny-random" | a model-set folder | a hub id | a single checkpoint file (.safetensors/.ckpt)
        device: None = "cuda" if available else "cpu"
        dtype: None = fp32 on CPU, fp16 on CUDA; "bf16"/"fp16"/"fp32" accepted (CUDA only for half:
            asked for on a CPU it is replaced by fp32 with a logged warning)
        image_encoder / image_prompt: a CLIP vision folder / an ip_sd15_64 checkpoint file, overriding
            the folder's own (env DIFFEDITOR_IMAGE_ENCODER / DIFFEDITOR_IMAGE_PROMPT). A hub id
            defaults to h94/IP-Adapter and Adapter/DragonDiffusion; a single file has no default.
        tokenizer: a CLIP tokenizer folder, for a single checkpoint file (env DIFFEDITOR_TOKENIZER;
            default: the SD1.5 or openai/clip-vit-large-patch14 tokenizer from the HF cache/hub)
        require_image_prompt: False lets image_encoder/image_proj/ip_layers be None when absent
        Every failure is a ModelLoadError whose message names the file or id and the fix.

The model-set folder layout (real and demo weights alike):
    model_index.json, unet/, vae/, text_encoder/, tokenizer/, scheduler/   (diffusers SD1.5)
    image_encoder/                 (CLIPVisionModelWithProjection)
    image_prompt/ip_sd15_64.bin    (authors' key layout: {"image_proj": ..., "ip_adapter": ...})
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
from pathlib import Path

import torch
from diffusers.models.attention_processor import AttnProcessor2_0
from torch import nn

from engine.components import Models
from engine.download import (
    IMAGE_ENCODER_FILES,
    IMAGE_ENCODER_REPO,
    IMAGE_ENCODER_SUBFOLDER,
    IMAGE_PROMPT_FILE,
    IMAGE_PROMPT_REPO,
    SD15_FILES,
    SD15_REPO,
    hub_unavailable_reason,
)
from engine.errors import ModelLoadError
from engine.image_prompt import load_image_prompt
from engine.model_sets import read_marker
from engine.random_model import RANDOM_SPEC
from engine.sd15 import SD15_CONFIG_DIR, SD15_CROSS_ATTENTION_DIM
from engine.shapes_model import DEMO_SPEC

IMAGE_PROMPT_NAMES = ("ip_sd15_64.bin", "ip_sd15_64.safetensors")
SINGLE_FILE_SUFFIXES = (".safetensors", ".ckpt")
MIN_VOCAB = 258  # the 256 byte-level tokens and two specials: less means no vocabulary was read
_FOLDER_PARTS = ("unet", "vae", "text_encoder", "tokenizer", "scheduler")
_DTYPES = {
    "fp32": torch.float32,
    "float32": torch.float32,
    "fp16": torch.float16,
    "float16": torch.float16,
    "half": torch.float16,
    "bf16": torch.bfloat16,
    "bfloat16": torch.bfloat16,
}
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
_FIX_MISSING = (
    "get real weights with `diffeditor models download DIR` or write the demo model with `diffeditor demo-model DIR`"
)

logger = logging.getLogger(__name__)


def resolve_device(device: str | torch.device | None) -> torch.device:
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ModelLoadError(f"unknown device {device!r} ({exc}); use cpu, cuda or cuda:N") from exc
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ModelLoadError(f"device {device!r} requested but CUDA is not available here; use device='cpu'")
    return dev


def resolve_dtype(dtype: str | torch.dtype | None, device: torch.device) -> torch.dtype:
    """fp16 on CUDA and fp32 elsewhere by default; half precision off CUDA falls back to fp32 (warned)."""
    if dtype is None:
        return torch.float16 if device.type == "cuda" else torch.float32
    if isinstance(dtype, str):
        if dtype.lower() not in _DTYPES:
            raise ModelLoadError(f"unknown dtype {dtype!r}; use one of fp32, fp16, bf16")
        dtype = _DTYPES[dtype.lower()]
    if dtype not in (torch.float32, torch.float16, torch.bfloat16):
        raise ModelLoadError(f"unsupported dtype {dtype}; use one of fp32, fp16, bf16")
    if device.type != "cuda" and dtype != torch.float32:
        logger.warning("dtype %s requested on %s: half precision is CUDA only here, using fp32", dtype, device)
        return torch.float32
    return dtype


def _quiet_loaders() -> None:
    """No per-file progress bars from the loaders: the CLI's errors are one line, workers log."""
    import diffusers.utils.logging as diffusers_logging
    import transformers.utils.logging as transformers_logging

    diffusers_logging.disable_progress_bar()
    transformers_logging.disable_progress_bar()


def load_models(
    spec: str | os.PathLike[str],
    device: str | torch.device | None = None,
    dtype: str | torch.dtype | None = None,
    *,
    image_encoder: str | os.PathLike[str] | None = None,
    image_prompt: str | os.PathLike[str] | None = None,
    tokenizer: str | os.PathLike[str] | None = None,
    require_image_prompt: bool = True,
) -> Models:
    """Load everything the editor needs from `spec` (see the module docstring for the contract)."""
    _quiet_loaders()
    dev = resolve_device(device)
    dt = resolve_dtype(dtype, dev)
    image_encoder = image_encoder or os.environ.get("DIFFEDITOR_IMAGE_ENCODER") or None
    image_prompt = image_prompt or os.environ.get("DIFFEDITOR_IMAGE_PROMPT") or None
    tokenizer = tokenizer or os.environ.get("DIFFEDITOR_TOKENIZER") or None

    # 1. Where the SD1.5 part comes from, and the default image-prompt files that go with it.
    text = str(spec)
    path = Path(text).expanduser()
    folder: Path | None = None
    if text == DEMO_SPEC:
        from engine.shapes_model import shapes_model_dir

        folder = shapes_model_dir()
    elif text == RANDOM_SPEC:
        from engine.random_model import ensure_random_model

        folder = ensure_random_model()
    elif path.is_dir():
        folder = path
    elif path.is_file():
        if path.suffix.lower() not in SINGLE_FILE_SUFFIXES:
            raise ModelLoadError(
                f"{path} is a file but not a checkpoint (.safetensors or .ckpt); pass a model-set folder, "
                f"a hub id or an SD1.5 checkpoint file; {_FIX_MISSING}"
            )
        if path.suffix.lower() == ".safetensors":
            _check_single_file_architecture(path)
    elif _HUB_ID.match(text) and not text.startswith((".", "~")) and path.suffix.lower() not in SINGLE_FILE_SUFFIXES:
        folder = hub_snapshot(text, SD15_FILES, what=f"the SD1.5 model; no local folder {path.resolve()} either")
    else:
        raise ModelLoadError(f"model {text!r}: no such folder or file (looked at {path.resolve()}); {_FIX_MISSING}")
    is_hub = folder is not None and text not in (DEMO_SPEC, RANDOM_SPEC) and not path.is_dir()
    if folder is not None:
        _check_folder(folder)

    # 2. The image-prompt files, checked before any large weights are read.
    if is_hub:
        ip_defaults = _hub_image_prompt_defaults(require_image_prompt and not (image_encoder and image_prompt))
    elif folder is not None:
        ip_defaults = (folder / "image_encoder", _find_image_prompt(folder))
    else:
        ip_defaults = (None, None)
    encoder_path = Path(image_encoder).expanduser() if image_encoder else ip_defaults[0]
    prompt_path = Path(image_prompt).expanduser() if image_prompt else ip_defaults[1]
    missing = _missing_image_prompt_parts(encoder_path, prompt_path)
    if missing and require_image_prompt:
        raise ModelLoadError(
            f"the image-prompt encoder is required but {missing} (model {text!r}). Pass image_encoder= and "
            "image_prompt= (or set DIFFEDITOR_IMAGE_ENCODER / DIFFEDITOR_IMAGE_PROMPT), or use a model-set "
            "folder from `diffeditor models download DIR`."
        )

    # 3. The SD1.5 components and the identity of the weights.
    if folder is None:
        parts = _load_single_file_parts(path, tokenizer, dt)
        model_id, is_demo = f"file:{path.resolve()}#{_fingerprint([path])}", False
    else:
        # a hub snapshot folder is named by its commit: that names the weights, no hashing needed
        parts, model_id, is_demo = _load_folder_parts(folder, dt, f"hub:{text}@{folder.name}" if is_hub else None)
    if (image_encoder or image_prompt) and not is_demo and not missing:
        model_id += f"+ip#{_fingerprint([p for p in (encoder_path, prompt_path) if p is not None])}"

    marker = read_marker(folder) if folder is not None and is_demo else None
    trained_resolution = int(marker["resolution"]) if marker and marker.get("resolution") else None
    unet, vae, text_encoder, tok, scheduler = parts
    for module in (unet, vae, text_encoder):  # already in dtype: diffusers warns on a dtype cast via to()
        module.to(device=dev).eval().requires_grad_(False)
    unet.set_attn_processor(AttnProcessor2_0())
    vae.set_attn_processor(AttnProcessor2_0())

    vision, image_proj, ip_layers = None, None, None
    if not missing:
        assert encoder_path is not None and prompt_path is not None
        vision = _load_image_encoder(encoder_path).to(device=dev, dtype=dt).eval().requires_grad_(False)
        image_proj, ip_layers = load_image_prompt(unet, prompt_path, dev, dt, clip_hidden=vision.config.hidden_size)

    return Models(
        unet=unet,
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tok,
        scheduler=scheduler,
        image_encoder=vision,
        image_proj=image_proj,
        ip_layers=ip_layers,
        device=dev,
        dtype=dt,
        model_id=model_id,
        is_demo=is_demo,
        random_weights=is_demo and not model_id.startswith("shapes-"),
        trained_resolution=trained_resolution,
    )


_Parts = tuple[nn.Module, nn.Module, nn.Module, object, object]


def _load_folder_parts(folder: Path, dtype: torch.dtype, model_id: str | None = None) -> tuple[_Parts, str, bool]:
    """(unet, vae, text encoder, tokenizer, scheduler), model_id, is_demo from a diffusers SD1.5 folder
    (`model_id` None: the folder and its files' fingerprint)."""
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextModel, CLIPTokenizer

    folder = folder.resolve()
    _check_folder(folder)
    try:
        unet = UNet2DConditionModel.from_pretrained(folder, subfolder="unet", torch_dtype=dtype)
        vae = AutoencoderKL.from_pretrained(folder, subfolder="vae", torch_dtype=dtype)
        text_encoder = CLIPTextModel.from_pretrained(folder / "text_encoder").to(dtype)
        tok = _check_tokenizer(CLIPTokenizer.from_pretrained(folder / "tokenizer"), folder / "tokenizer")
    except (OSError, ValueError, RuntimeError, KeyError) as exc:
        raise ModelLoadError(f"{folder}: cannot load the SD1.5 components ({exc}); {_FIX_MISSING}") from exc
    scheduler = _ddim_scheduler(folder / "scheduler")

    marker = read_marker(folder)
    if marker is not None:
        seed = int(marker.get("seed", 0))
        kind = "tiny-random" if marker.get("random_weights", True) else "shapes"
        model_id = f"{kind}-v{int(marker.get('version', 1))}" + (f"-seed{seed}" if seed else "")
        return (unet, vae, text_encoder, tok, scheduler), model_id, True
    return (
        (unet, vae, text_encoder, tok, scheduler),
        model_id or f"{folder}#{_fingerprint([folder], root=folder)}",
        False,
    )


def _check_folder(folder: Path) -> None:
    """The cheap checks (layout, SD1.5 UNet config) that come before reading any weights."""
    absent = [name for name in _FOLDER_PARTS if not (folder / name).is_dir()]
    if absent:
        raise ModelLoadError(
            f"{folder} is not a model-set folder: missing {', '.join(f'{n}/' for n in absent)}; {_FIX_MISSING}"
        )
    check_sd15_unet_config(folder / "unet" / "config.json")


def check_sd15_unet_config(config_path: Path) -> None:
    """Refuse SD2/SDXL UNets before loading their weights: the image-prompt weights need width 768."""
    try:
        config = json.loads(config_path.read_text())
    except (OSError, ValueError) as exc:
        raise ModelLoadError(f"{config_path}: cannot read the UNet config ({exc}); {_FIX_MISSING}") from exc
    _check_cross_attention_dim(config.get("cross_attention_dim"), str(config_path))


def _check_cross_attention_dim(dim: object, where: str) -> None:
    if dim == SD15_CROSS_ATTENTION_DIM:
        return
    family = {1024: "SD2.x", 2048: "SDXL"}.get(dim if isinstance(dim, int) else -1, "not SD1.5")
    raise ModelLoadError(
        f"{where}: UNet cross_attention_dim is {dim} ({family}); DiffEditor needs Stable Diffusion 1.5 weights "
        f"(cross_attention_dim {SD15_CROSS_ATTENTION_DIM}) because its image-prompt weights are SD1.5-only. "
        "Use an SD1.5 model, e.g. `diffeditor models download DIR`."
    )


def _ddim_scheduler(folder: Path) -> object:
    """DDIM with SD1.5's numbers (§1); the folder's config (often PNDM's) supplies or overrides them."""
    from diffusers import DDIMScheduler

    config = json.loads((SD15_CONFIG_DIR / "scheduler" / "scheduler_config.json").read_text())
    try:
        config.update(DDIMScheduler.load_config(folder))
    except (OSError, ValueError) as exc:
        raise ModelLoadError(f"{folder}: cannot read the scheduler config ({exc}); {_FIX_MISSING}") from exc
    return DDIMScheduler.from_config(config)


def _load_single_file_parts(path: Path, tokenizer: str | os.PathLike[str] | None, dtype: torch.dtype) -> _Parts:
    """SD1.5 from one original-layout checkpoint, with the configs shipped in engine/configs/sd15."""
    from diffusers import StableDiffusionPipeline

    tok = _single_file_tokenizer(path, tokenizer)
    scheduler = _ddim_scheduler(SD15_CONFIG_DIR / "scheduler")
    try:
        pipe = StableDiffusionPipeline.from_single_file(
            str(path),
            config=str(SD15_CONFIG_DIR),
            tokenizer=tok,
            scheduler=scheduler,
            safety_checker=None,
            feature_extractor=None,
            image_encoder=None,
            requires_safety_checker=False,
            local_files_only=True,
            torch_dtype=dtype,
        )
    except Exception as exc:  # diffusers raises many types for a malformed or foreign checkpoint
        raise ModelLoadError(
            f"{path}: cannot load it as a Stable Diffusion 1.5 checkpoint ({type(exc).__name__}: {exc}). "
            "Use an SD1.5 .safetensors/.ckpt file or a model-set folder (`diffeditor models download DIR`)."
        ) from exc
    _check_cross_attention_dim(pipe.unet.config.cross_attention_dim, str(path))
    return pipe.unet, pipe.vae, pipe.text_encoder, tok, scheduler


def _check_single_file_architecture(path: Path) -> None:
    """Read the header only: SDXL has two text encoders; SD2 cross-attends with width 1024."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            keys = list(f.keys())
            if any(k.startswith("conditioner.embedders.1.") for k in keys):
                _check_cross_attention_dim(2048, str(path))
            for key in keys:
                if key.endswith("attn2.to_k.weight"):
                    _check_cross_attention_dim(int(f.get_slice(key).get_shape()[1]), f"{path} ({key})")
                    return
    except ModelLoadError:
        raise
    except Exception as exc:  # header parse failures
        raise ModelLoadError(f"{path}: not a readable safetensors file ({exc})") from exc
    raise ModelLoadError(f"{path}: no UNet cross-attention weights found; this is not a Stable Diffusion checkpoint")


def _single_file_tokenizer(path: Path, tokenizer: str | os.PathLike[str] | None) -> object:
    """A single checkpoint carries no tokenizer: a given folder, else SD1.5's/CLIP's from the hub cache."""
    from transformers import CLIPTokenizer

    if tokenizer is not None:
        try:
            return _check_tokenizer(CLIPTokenizer.from_pretrained(Path(tokenizer).expanduser()), tokenizer)
        except (OSError, ValueError) as exc:
            raise ModelLoadError(f"tokenizer folder {tokenizer}: cannot load a CLIP tokenizer ({exc})") from exc
    local_only = hub_unavailable_reason() is not None
    for repo, subfolder in ((SD15_REPO, "tokenizer"), ("openai/clip-vit-large-patch14", "")):
        try:
            tok = CLIPTokenizer.from_pretrained(repo, subfolder=subfolder, local_files_only=local_only)
            return _check_tokenizer(tok, f"{repo}/{subfolder}")
        except (OSError, ValueError, ModelLoadError):
            continue
    raise ModelLoadError(
        f"{path}: a single checkpoint file has no tokenizer and none is available offline "
        f"({SD15_REPO}/tokenizer is not in the Hugging Face cache). Pass tokenizer=DIR (or set "
        "DIFFEDITOR_TOKENIZER) to a CLIP tokenizer folder, or use a model-set folder from "
        "`diffeditor models download DIR`."
    )


def _check_tokenizer(tok: object, where: object) -> object:
    """transformers ≥ 5 builds an empty-vocabulary tokenizer when the files are missing: refuse that."""
    if len(tok) < MIN_VOCAB:  # type: ignore[arg-type]
        raise ModelLoadError(
            f"tokenizer {where}: no CLIP vocabulary found (vocab.json/merges.txt missing or empty); {_FIX_MISSING}"
        )
    return tok


def hub_snapshot(repo_id: str, allow_patterns: list[str], what: str) -> Path:
    """A snapshot of `repo_id` from the HF cache, downloading only when the hub is usable."""
    from huggingface_hub import snapshot_download

    reason = hub_unavailable_reason()
    try:
        return Path(snapshot_download(repo_id, allow_patterns=allow_patterns, local_files_only=reason is not None))
    except Exception as exc:  # huggingface_hub's errors: not cached, not found, gated, HTTP
        why = f"{reason} and it is not in the Hugging Face cache" if reason else f"{type(exc).__name__}: {exc}"
        raise ModelLoadError(
            f"hub id {repo_id!r} ({what}): cannot load it: {why}. Download it where the hub is reachable "
            "(`diffeditor models download DIR`) and pass DIR instead, or use the offline demo model "
            "(`diffeditor demo-model DIR` or the spec 'demo')."
        ) from exc


def _hub_image_prompt_defaults(needed: bool) -> tuple[Path | None, Path | None]:
    """The authors' image encoder and checkpoint from the hub (cache), or (None, None) if not needed."""
    if not needed:
        return None, None
    encoder = hub_snapshot(IMAGE_ENCODER_REPO, IMAGE_ENCODER_FILES, what="the CLIP image encoder")
    prompt = hub_snapshot(IMAGE_PROMPT_REPO, [IMAGE_PROMPT_FILE], what="the image-prompt checkpoint")
    return encoder / IMAGE_ENCODER_SUBFOLDER, prompt / IMAGE_PROMPT_FILE


def _find_image_prompt(folder: Path) -> Path:
    for name in IMAGE_PROMPT_NAMES:
        if (folder / "image_prompt" / name).is_file():
            return folder / "image_prompt" / name
    return folder / "image_prompt" / IMAGE_PROMPT_NAMES[0]


def _missing_image_prompt_parts(encoder: Path | None, prompt: Path | None) -> str | None:
    if encoder is None and prompt is None:
        return "no image encoder or image-prompt checkpoint was given"
    if encoder is None or not (encoder / "config.json").is_file():
        return f"the image encoder folder {encoder} is missing (it needs config.json and weights)"
    if prompt is None or not prompt.is_file():
        return f"the image-prompt checkpoint {prompt} is missing"
    return None


def _load_image_encoder(folder: Path) -> nn.Module:
    from transformers import CLIPVisionModelWithProjection

    try:
        return CLIPVisionModelWithProjection.from_pretrained(folder)
    except (OSError, ValueError, RuntimeError) as exc:
        raise ModelLoadError(f"{folder}: cannot load the CLIP image encoder ({exc}); {_FIX_MISSING}") from exc


def _fingerprint(paths: list[Path], root: Path | None = None) -> str:
    """An identity of weight files: names, sizes, modification times and a SHA-256 of their
    contents, so that weights replaced in place with the same size and mtime (a copy that keeps
    times, a restored backup) still get a new identity and no stale inversion-cache hit.

    Hashing reads every byte once, at load time: under 0.1 s for the 25 MB demo folder; at the
    0.7 GB/s measured on one core, about 7 s for SD1.5 with its image encoder (docs/operations.md).
    Folders are walked following symlinks; huggingface_hub's `.cache` bookkeeping is skipped.
    """
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            for dirpath, dirnames, filenames in os.walk(path, followlinks=True):
                dirnames[:] = [d for d in dirnames if d != ".cache"]
                files.extend(Path(dirpath) / f for f in filenames)
        elif path.is_file():
            files.append(path)
    digest = hashlib.sha256()
    for file in sorted(files):
        st = file.stat()
        name = file.relative_to(root) if root else file.resolve()
        with file.open("rb") as f:
            content = hashlib.file_digest(f, "sha256").hexdigest()
        digest.update(f"{name}:{st.st_size}:{st.st_mtime_ns}:{content}\n".encode())
    return digest.hexdigest()[:16]

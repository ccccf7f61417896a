"""A tiny random-weight model with SD1.5's architecture, for tests and the offline demo.

`write_demo_model(dir)` writes the same model-set layout as real weights (see engine.models), so the
demo goes through the very loaders real weights use. Every block type, the 32 attention processors
(16 cross-attention layers), cross-attention width 768, the ×8 VAE, the 257-token CLIP vision
encoder and the authors' image-prompt checkpoint layout are kept; only widths and depths shrink.
Outputs are noise-like: they prove the machinery, never quality.

Weights are drawn per parameter from a CPU generator seeded by (seed, component, parameter name),
so a seed gives the same tensors everywhere, whatever the library's own initialisers do.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import zlib
from pathlib import Path

import torch
from torch import nn

from engine import tokenizer as demo_tokenizer
from engine.image_prompt import image_prompt_shapes, ip_adapter_shapes

DEMO_VERSION = 1
DEMO_MARKER = "demo_model.json"
DEMO_CACHE_SUBDIR = f"demo-model-v{DEMO_VERSION}"
SD15_CONFIG_DIR = Path(__file__).parent / "configs" / "sd15"

CROSS_ATTENTION_DIM = 768  # SD1.5's text width: the same architecture checks apply to demo and real weights
UNET_CONFIG: dict = {
    "sample_size": 64,
    "in_channels": 4,
    "out_channels": 4,
    "down_block_types": ["CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"],
    "up_block_types": ["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"],
    "block_out_channels": [32, 64, 64, 64],
    "layers_per_block": 2,
    "norm_num_groups": 8,
    "attention_head_dim": 2,  # diffusers' legacy name: the number of heads
    "cross_attention_dim": CROSS_ATTENTION_DIM,
}
VAE_CONFIG: dict = {
    "in_channels": 3,
    "out_channels": 3,
    "down_block_types": ["DownEncoderBlock2D"] * 4,
    "up_block_types": ["UpDecoderBlock2D"] * 4,
    "block_out_channels": [16, 32, 32, 32],
    "layers_per_block": 1,
    "norm_num_groups": 8,
    "latent_channels": 4,
    "sample_size": 64,
    "scaling_factor": 0.18215,
}
TEXT_HIDDEN = CROSS_ATTENTION_DIM
VISION_HIDDEN = 32
RESAMPLER_WIDTH = 64  # a multiple of 64: the authors' Resampler uses 64-wide heads (here 1 head)

README = """\
diffeditor demo model (version {version}, seed {seed})

RANDOM WEIGHTS. This folder holds a tiny model with the architecture of Stable Diffusion 1.5
(UNet, VAE, CLIP text encoder, tokenizer, DDIM scheduler), a tiny CLIP vision encoder and an
image-prompt checkpoint in the DiffEditor authors' key layout. It exists for tests and the offline
demo only: its outputs are noise-like and prove the machinery, never quality.
Real weights: `diffeditor models download DIR`.
"""


def _param_generator(seed: int, component: str, name: str) -> torch.Generator:
    return torch.Generator().manual_seed(zlib.crc32(f"{seed}:{component}:{name}".encode()))


def _random_tensor(seed: int, component: str, name: str, shape: torch.Size) -> torch.Tensor:
    """Deterministic init: norms 1, biases 0, embeddings N(0, .02²), weights N(0, 1/fan_in)."""
    leaf = name.rsplit(".", 1)[-1]
    if "embedding" in name and leaf != "bias":
        std = 0.02
    elif leaf == "bias":
        return torch.zeros(shape)
    elif len(shape) == 1:
        return torch.ones(shape)
    elif leaf == "latents":
        std = shape[-1] ** -0.5
    else:
        std = (torch.Size(shape[1:]).numel()) ** -0.5
    return torch.randn(shape, generator=_param_generator(seed, component, name)) * std


def _randomize(module: nn.Module, seed: int, component: str) -> nn.Module:
    with torch.no_grad():
        for name, param in module.named_parameters():
            param.copy_(_random_tensor(seed, component, name, param.shape))
    return module


def _random_state(seed: int, component: str, shapes: dict[str, tuple[int, ...]]) -> dict[str, torch.Tensor]:
    return {name: _random_tensor(seed, component, name, torch.Size(shape)) for name, shape in shapes.items()}


def _model_index() -> dict:
    import diffusers

    return {
        "_class_name": "StableDiffusionPipeline",
        "_diffusers_version": diffusers.__version__,
        "feature_extractor": [None, None],
        "image_encoder": [None, None],
        "requires_safety_checker": False,
        "safety_checker": [None, None],
        "scheduler": ["diffusers", "DDIMScheduler"],
        "text_encoder": ["transformers", "CLIPTextModel"],
        "tokenizer": ["transformers", "CLIPTokenizer"],
        "unet": ["diffusers", "UNet2DConditionModel"],
        "vae": ["diffusers", "AutoencoderKL"],
    }


def write_demo_model(path: str | os.PathLike[str], seed: int = 0) -> Path:
    """Write the demo model set into `path` (created; existing files overwritten) and return it."""
    from diffusers import AutoencoderKL, DDIMScheduler, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPVisionConfig, CLIPVisionModelWithProjection

    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    (path / DEMO_MARKER).unlink(missing_ok=True)  # written last: its presence means "complete"

    unet = _randomize(UNet2DConditionModel(**UNET_CONFIG), seed, "unet")
    unet.save_pretrained(path / "unet", safe_serialization=True)
    _randomize(AutoencoderKL(**VAE_CONFIG), seed, "vae").save_pretrained(path / "vae", safe_serialization=True)

    demo_tokenizer.write_tokenizer(path / "tokenizer")
    bos_id, eos_id = demo_tokenizer.special_token_ids()
    text_config = CLIPTextConfig(
        vocab_size=demo_tokenizer.vocab_size(),
        hidden_size=TEXT_HIDDEN,
        intermediate_size=64,
        num_hidden_layers=1,
        num_attention_heads=12,
        max_position_embeddings=demo_tokenizer.MAX_LENGTH,
        hidden_act="quick_gelu",
        projection_dim=TEXT_HIDDEN,
        bos_token_id=bos_id,
        eos_token_id=eos_id,
        pad_token_id=eos_id,
    )
    _randomize(CLIPTextModel(text_config), seed, "text_encoder").save_pretrained(path / "text_encoder")

    scheduler_config = json.loads((SD15_CONFIG_DIR / "scheduler" / "scheduler_config.json").read_text())
    DDIMScheduler.from_config(scheduler_config).save_pretrained(path / "scheduler")

    vision_config = CLIPVisionConfig(
        hidden_size=VISION_HIDDEN,
        intermediate_size=64,
        num_hidden_layers=2,  # hidden_states[-2] must be a real layer's output
        num_attention_heads=2,
        image_size=224,
        patch_size=14,
        projection_dim=32,
        hidden_act="gelu",
    )
    _randomize(CLIPVisionModelWithProjection(vision_config), seed, "image_encoder").save_pretrained(
        path / "image_encoder"
    )

    checkpoint = {
        "image_proj": _random_state(
            seed, "image_proj", image_prompt_shapes(VISION_HIDDEN, RESAMPLER_WIDTH, CROSS_ATTENTION_DIM)
        ),
        "ip_adapter": _random_state(seed, "ip_adapter", ip_adapter_shapes(unet)),
    }
    (path / "image_prompt").mkdir(exist_ok=True)
    torch.save(checkpoint, path / "image_prompt" / "ip_sd15_64.bin")

    (path / "model_index.json").write_text(json.dumps(_model_index(), indent=2) + "\n")
    (path / "README.txt").write_text(README.format(version=DEMO_VERSION, seed=seed))
    marker = {"name": "diffeditor-demo", "version": DEMO_VERSION, "seed": seed, "random_weights": True}
    (path / DEMO_MARKER).write_text(json.dumps(marker, indent=2) + "\n")
    return path


def read_demo_marker(path: Path) -> dict | None:
    """The demo marker of a model-set folder, or None for real weights."""
    marker = Path(path) / DEMO_MARKER
    if not marker.is_file():
        return None
    try:
        return json.loads(marker.read_text())
    except (OSError, ValueError):
        return None


def cache_dir() -> Path:
    return Path(os.environ.get("DIFFEDITOR_CACHE_DIR") or Path.home() / ".cache" / "diffeditor")


def ensure_demo_model() -> Path:
    """The demo model in the cache folder, built on first use (safe when processes race to build it)."""
    final = cache_dir() / DEMO_CACHE_SUBDIR
    if read_demo_marker(final) is not None:
        return final
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{DEMO_CACHE_SUBDIR}-", dir=final.parent))
    try:
        write_demo_model(tmp)
        tmp.chmod(0o755)  # mkdtemp makes it private; the cache is shared by the user's processes
        if final.exists() and read_demo_marker(final) is None:
            shutil.rmtree(final, ignore_errors=True)  # a half-written folder from an older layout
        try:
            tmp.rename(final)  # atomic; fails if another process renamed its copy first
        except OSError:
            if read_demo_marker(final) is None:
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return final

"""The tiny random-weight test model (`tiny-random`): SD1.5's architecture at toy widths.

Fast unit tests of the machinery use it; the `demo` model is the trained shapes-world model
(`engine.shapes_model`). `write_random_model(dir)` writes the same model-set layout as real weights (see engine.models), so it goes through the very loaders real weights use. Every block type, the 32 attention processors
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

from engine import tokenizer as bpe
from engine.image_prompt import image_prompt_shapes, ip_adapter_shapes
from engine.model_sets import MARKER, model_index, read_marker
from engine.sd15 import SD15_CONFIG_DIR, SD15_CROSS_ATTENTION_DIM, SD15_DOWN_BLOCKS, SD15_UP_BLOCKS

RANDOM_VERSION = 1
RANDOM_SPEC = "tiny-random"  # load_models("tiny-random"): built into the cache on first use
RANDOM_CACHE_SUBDIR = f"tiny-random-v{RANDOM_VERSION}"
MARKER_NAME = "diffeditor-tiny-random"

CROSS_ATTENTION_DIM = SD15_CROSS_ATTENTION_DIM  # the same architecture checks apply to it and real weights
UNET_CONFIG: dict = {
    "sample_size": 64,
    "in_channels": 4,
    "out_channels": 4,
    "down_block_types": list(SD15_DOWN_BLOCKS),
    "up_block_types": list(SD15_UP_BLOCKS),
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
diffeditor tiny random test model (version {version}, seed {seed})

RANDOM WEIGHTS. This folder holds a tiny model with the architecture of Stable Diffusion 1.5
(UNet, VAE, CLIP text encoder, tokenizer, DDIM scheduler), a tiny CLIP vision encoder and an
image-prompt checkpoint in the DiffEditor authors' key layout. It exists for fast tests only: its
outputs are noise-like and prove the machinery, never quality. The `demo` model is trained.
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


def write_random_model(path: str | os.PathLike[str], seed: int = 0) -> Path:
    """Write the tiny random model set into `path` (created; existing files overwritten) and return it."""
    from diffusers import AutoencoderKL, DDIMScheduler, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPVisionConfig, CLIPVisionModelWithProjection

    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    (path / MARKER).unlink(missing_ok=True)  # written last: its presence means "complete"

    unet = _randomize(UNet2DConditionModel(**UNET_CONFIG), seed, "unet")
    unet.save_pretrained(path / "unet", safe_serialization=True)
    _randomize(AutoencoderKL(**VAE_CONFIG), seed, "vae").save_pretrained(path / "vae", safe_serialization=True)

    bpe.write_tokenizer(path / "tokenizer")
    bos_id, eos_id = bpe.special_token_ids()
    text_config = CLIPTextConfig(
        vocab_size=bpe.vocab_size(),
        hidden_size=TEXT_HIDDEN,
        intermediate_size=64,
        num_hidden_layers=1,
        num_attention_heads=12,
        max_position_embeddings=bpe.MAX_LENGTH,
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

    (path / "model_index.json").write_text(json.dumps(model_index(), indent=2) + "\n")
    (path / "README.txt").write_text(README.format(version=RANDOM_VERSION, seed=seed))
    marker = {"name": MARKER_NAME, "version": RANDOM_VERSION, "seed": seed, "random_weights": True}
    (path / MARKER).write_text(json.dumps(marker, indent=2) + "\n")
    return path


def cache_dir() -> Path:
    return Path(os.environ.get("DIFFEDITOR_CACHE_DIR") or Path.home() / ".cache" / "diffeditor")


def ensure_random_model() -> Path:
    """The tiny random model in the cache folder, built on first use (safe when processes race to build it)."""
    final = cache_dir() / RANDOM_CACHE_SUBDIR
    if read_marker(final) is not None:
        return final
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{RANDOM_CACHE_SUBDIR}-", dir=final.parent))
    try:
        write_random_model(tmp)
        tmp.chmod(0o755)  # mkdtemp makes it private; the cache is shared by the user's processes
        if final.exists() and read_marker(final) is None:
            shutil.rmtree(final, ignore_errors=True)  # a half-written folder from an older layout
        try:
            tmp.rename(final)  # atomic; fails if another process renamed its copy first
        except OSError:
            if read_marker(final) is None:
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return final

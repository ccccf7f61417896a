"""The image-prompt encoder (§2): CLIP vision features -> Resampler -> 64 tokens, and its checkpoint.

The checkpoint is the authors' `ip_sd15_64.bin` (§2.2): {"image_proj": Resampler state dict,
"ip_adapter": {"{k}.to_k_ip.weight", "{k}.to_v_ip.weight"}} with k the index of a cross-attention
layer among all attention processors. The same tensors are accepted as .safetensors with keys
prefixed "image_proj." / "ip_adapter.". The Resampler is diffusers' IPAdapterPlusImageProjection,
converted by diffusers' own IP-Adapter-Plus conversion; every key and shape is checked first so a
wrong file fails with a message naming the key, not deep inside `load_state_dict`.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from PIL import Image
from torch import nn

from engine.errors import ModelLoadError

if TYPE_CHECKING:
    from engine.components import Models

RESAMPLER_QUERIES = 64  # the checkpoint's name says it: ip_sd15_64
RESAMPLER_DEPTH = 4
HEAD_DIM = 64
PREPROCESS_SIZE = 256  # the image is squashed to 256×256 before CLIP's own resize/crop (§2.1)
MAX_LISTED_PROBLEMS = 6


def image_prompt_shapes(
    clip_hidden: int,
    width: int,
    output_dim: int = 768,
    queries: int = RESAMPLER_QUERIES,
    depth: int = RESAMPLER_DEPTH,
) -> dict[str, tuple[int, ...]]:
    """The authors' Resampler state-dict layout (§2.2): key -> shape, at the given widths."""
    shapes: dict[str, tuple[int, ...]] = {
        "latents": (1, queries, width),
        "proj_in.weight": (width, clip_hidden),
        "proj_in.bias": (width,),
        "proj_out.weight": (output_dim, width),
        "proj_out.bias": (output_dim,),
        "norm_out.weight": (output_dim,),
        "norm_out.bias": (output_dim,),
    }
    for layer in range(depth):
        p = f"layers.{layer}"
        shapes.update(
            {
                f"{p}.0.norm1.weight": (width,),
                f"{p}.0.norm1.bias": (width,),
                f"{p}.0.norm2.weight": (width,),
                f"{p}.0.norm2.bias": (width,),
                f"{p}.0.to_q.weight": (width, width),
                f"{p}.0.to_kv.weight": (2 * width, width),  # first half k, second half v
                f"{p}.0.to_out.weight": (width, width),
                f"{p}.1.0.weight": (width,),  # feed-forward LayerNorm
                f"{p}.1.0.bias": (width,),
                f"{p}.1.1.weight": (4 * width, width),
                f"{p}.1.3.weight": (width, 4 * width),
            }
        )
    return shapes


def cross_attention_layers(unet: nn.Module) -> list[tuple[int, str, nn.Module]]:
    """(index among all attention processors, processor name, Attention module) of each attn2 layer.

    The index is the authors' key k: SD1.5's processors alternate attn1/attn2, so the j-th
    cross-attention layer is k = 2j+1 (down blocks, then up blocks, then the mid block).
    """
    layers = []
    for k, name in enumerate(unet.attn_processors):
        if name.endswith("attn2.processor"):
            layers.append((k, name, unet.get_submodule(name.removesuffix(".processor"))))
    return layers


def ip_adapter_shapes(unet: nn.Module) -> dict[str, tuple[int, ...]]:
    """Expected "{k}.to_k_ip.weight"/"{k}.to_v_ip.weight" shapes ([hidden, cross dim]) for this UNet."""
    cross_dim = unet.config.cross_attention_dim
    shapes: dict[str, tuple[int, ...]] = {}
    for k, _, attn in cross_attention_layers(unet):
        shapes[f"{k}.to_k_ip.weight"] = (attn.to_k.out_features, cross_dim)
        shapes[f"{k}.to_v_ip.weight"] = (attn.to_v.out_features, cross_dim)
    return shapes


def read_checkpoint(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """(image_proj, ip_adapter) state dicts from a .bin (torch pickle) or .safetensors file."""
    path = Path(path)
    if not path.is_file():
        raise ModelLoadError(
            f"image-prompt checkpoint {path} not found. Get it with `diffeditor models download DIR` "
            "(it lands in DIR/image_prompt/ip_sd15_64.bin) or point image_prompt= at the file."
        )
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            flat = load_file(str(path), device="cpu")
            parts: dict[str, dict[str, torch.Tensor]] = {"image_proj": {}, "ip_adapter": {}}
            for key, value in flat.items():
                prefix, _, rest = key.partition(".")
                if prefix not in parts or not rest:
                    raise ModelLoadError(
                        f"{path}: unexpected key {key!r}; keys must start with 'image_proj.' or 'ip_adapter.'"
                    )
                parts[prefix][rest] = value
        else:
            parts = torch.load(path, map_location="cpu", weights_only=True)
    except ModelLoadError:
        raise
    except Exception as exc:  # unpickling/parsing failures come in many types
        raise ModelLoadError(f"{path}: cannot read the image-prompt checkpoint ({exc})") from exc
    if not isinstance(parts, dict):
        raise ModelLoadError(f"{path}: expected a dict with 'image_proj' and 'ip_adapter', got {type(parts).__name__}")
    for section in ("image_proj", "ip_adapter"):
        if not isinstance(parts.get(section), dict) or not parts[section]:
            raise ModelLoadError(
                f"{path}: missing section {section!r} (the authors' layout has image_proj and ip_adapter)"
            )
    extra = sorted(set(parts) - {"image_proj", "ip_adapter"})
    if extra:
        raise ModelLoadError(f"{path}: unexpected top-level key {extra[0]!r}; expected only image_proj and ip_adapter")
    return parts["image_proj"], parts["ip_adapter"]


def _check_layout(
    path: Path, section: str, state: dict[str, torch.Tensor], expected: dict[str, tuple[int, ...]]
) -> None:
    problems = [f"missing key {section}.{k} (expected shape {list(s)})" for k, s in expected.items() if k not in state]
    problems += [f"unexpected key {section}.{k} (shape {list(state[k].shape)})" for k in state if k not in expected]
    problems += [
        f"key {section}.{k} has shape {list(state[k].shape)}, expected {list(s)}"
        for k, s in expected.items()
        if k in state and tuple(state[k].shape) != s
    ]
    if problems:
        more = f" (and {len(problems) - MAX_LISTED_PROBLEMS} more)" if len(problems) > MAX_LISTED_PROBLEMS else ""
        raise ModelLoadError(
            f"{path} does not match the expected image-prompt layout: "
            + "; ".join(problems[:MAX_LISTED_PROBLEMS])
            + more
            + ". Use the authors' ip_sd15_64.bin (`diffeditor models download DIR`) with its matching image encoder."
        )


def _resampler_width(path: Path, state: dict[str, torch.Tensor]) -> int:
    """The Resampler width, read from whichever defining key is present (the full check follows)."""
    for key, axis in (("latents", -1), ("proj_out.weight", 1), ("layers.0.0.to_q.weight", 0), ("proj_in.weight", 0)):
        if key in state and state[key].ndim > 0:
            width = int(state[key].shape[axis])
            if width % HEAD_DIM:
                raise ModelLoadError(
                    f"{path}: image_proj.{key} has shape {list(state[key].shape)}: the Resampler width {width} "
                    f"is not a multiple of the head size {HEAD_DIM}"
                )
            return width
    raise ModelLoadError(f"{path}: image_proj has none of latents, proj_out.weight, layers.0.0.to_q.weight")


def load_image_prompt(
    unet: nn.Module,
    path: str | os.PathLike[str],
    device: torch.device | str,
    dtype: torch.dtype,
    clip_hidden: int | None = None,
) -> tuple[nn.Module, dict[str, tuple[nn.Linear, nn.Linear]]]:
    """Load the Resampler and the per-layer image K/V projections for `unet` from the checkpoint.

    clip_hidden: the image encoder's hidden size; when given, proj_in must match it.
    Returns (image_proj, ip_layers): ip_layers maps each attn2 processor name of `unet`, in
    `unet.attn_processors` order, to (to_k_ip, to_v_ip), Linear(cross dim -> hidden, bias=False).
    """
    path = Path(path)
    proj_state, ip_state = read_checkpoint(path)
    width = _resampler_width(path, proj_state)
    if clip_hidden is None:
        weight = proj_state.get("proj_in.weight")
        clip_hidden = int(weight.shape[-1]) if weight is not None and weight.ndim == 2 else -1
    cross_dim = unet.config.cross_attention_dim
    _check_layout(path, "image_proj", proj_state, image_prompt_shapes(clip_hidden, width, cross_dim))
    _check_layout(path, "ip_adapter", ip_state, ip_adapter_shapes(unet))

    proj_state = {k: v.float() for k, v in proj_state.items()}  # the conversion copies into fp32 modules
    try:
        image_proj = unet._convert_ip_adapter_image_proj_to_diffusers(proj_state, low_cpu_mem_usage=False)
    except (RuntimeError, KeyError) as exc:
        raise ModelLoadError(f"{path}: diffusers could not load image_proj strictly ({exc})") from exc
    image_proj = image_proj.to(device=device, dtype=dtype).eval().requires_grad_(False)

    ip_layers: dict[str, tuple[nn.Linear, nn.Linear]] = {}
    for k, name, _ in cross_attention_layers(unet):
        pair = []
        for which in ("to_k_ip", "to_v_ip"):
            weight = ip_state[f"{k}.{which}.weight"]
            linear = nn.Linear(weight.shape[1], weight.shape[0], bias=False)
            with torch.no_grad():
                linear.weight.copy_(weight)
            pair.append(linear.to(device=device, dtype=dtype).eval().requires_grad_(False))
        ip_layers[name] = (pair[0], pair[1])
    return image_proj, ip_layers


@lru_cache(maxsize=1)
def _clip_processor():
    """A default CLIP image processor (short side 224 bicubic, center crop, OpenAI mean/std), PIL backend."""
    try:
        from transformers import CLIPImageProcessorPil as Processor  # transformers ≥ 5: the PIL implementation
    except ImportError:
        from transformers import CLIPImageProcessor as Processor
    return Processor()


def preprocess(images: list[Image.Image]) -> torch.Tensor:
    """§2.1 step 1: squash to 256×256 (bicubic, aspect ignored), then CLIP's resize/crop/normalize."""
    squashed = [img.convert("RGB").resize((PREPROCESS_SIZE, PREPROCESS_SIZE), Image.BICUBIC) for img in images]
    return _clip_processor()(images=squashed, return_tensors="pt").pixel_values


@torch.no_grad()
def encode_image_prompt(models: Models, images: list[Image.Image]) -> tuple[torch.Tensor, torch.Tensor]:
    """(cond, uncond) image tokens, each (B, 64, cross dim), in the models' device and dtype (§2.1).

    uncond is the same encoder + Resampler applied to zeros shaped like the normalized input.
    """
    if models.image_encoder is None or models.image_proj is None:
        raise ModelLoadError(
            "the image-prompt encoder is not loaded; load the models with require_image_prompt=True "
            "from a folder that has image_encoder/ and image_prompt/"
        )
    if not images:
        raise ValueError("encode_image_prompt needs at least one image")
    pixels = preprocess(images).to(device=models.device, dtype=models.dtype)

    def tokens(x: torch.Tensor) -> torch.Tensor:
        features = models.image_encoder(x, output_hidden_states=True).hidden_states[-2]
        return models.image_proj(features)

    # The zero image's tokens are the same for every row: one extra row in the same batch.
    out = tokens(torch.cat([pixels, torch.zeros_like(pixels[:1])]))
    cond, uncond = out[:-1], out[-1:]
    return cond, uncond.expand(len(images), -1, -1)

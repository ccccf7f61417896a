"""Diffusers state-dict keys → the original Stable Diffusion 1.x (CompVis/LDM) checkpoint layout,
the layout of the single `.safetensors`/`.ckpt` files people download. The tests write such a
file from known weights and load it back through the engine's single-file loader, which hands it
to diffusers' own LDM → diffusers conversion: the two directions are written independently, so a
round trip that gives back every weight checks the loader on real-layout files.

Layout (SD1.x): `model.diffusion_model.` + the UNet's `input_blocks` / `middle_block` /
`output_blocks`, `first_stage_model.` + the VAE's `encoder.down` / `decoder.up` / `mid`, and
`cond_stage_model.transformer.text_model.` + the CLIP text model's keys.
"""

from __future__ import annotations

import re

import torch

UNET_PREFIX = "model.diffusion_model."
VAE_PREFIX = "first_stage_model."
TEXT_PREFIX = "cond_stage_model.transformer."

# ResBlock parts: diffusers name → LDM name (UNet only; the VAE's ResnetBlocks keep their names).
_UNET_RESNET = {
    "norm1": "in_layers.0",
    "conv1": "in_layers.2",
    "norm2": "out_layers.0",
    "conv2": "out_layers.3",
    "time_emb_proj": "emb_layers.1",
    "conv_shortcut": "skip_connection",
}
_UNET_TOP = {
    "time_embedding.linear_1": "time_embed.0",
    "time_embedding.linear_2": "time_embed.2",
    "conv_in": "input_blocks.0.0",
    "conv_norm_out": "out.0",
    "conv_out": "out.2",
}
_VAE_ATTENTION = {"group_norm": "norm", "to_q": "q", "to_k": "k", "to_v": "v", "to_out.0": "proj_out"}


def _resnet(rest: str) -> str:
    part, _, tail = rest.partition(".")
    return f"{_UNET_RESNET.get(part, part)}.{tail}"


def unet_key(key: str) -> str:
    """SD1.x UNet (2 resnets per down block, 3 per up block, attention in down 0–2 and up 1–3)."""
    head, _, param = key.rpartition(".")
    if head in _UNET_TOP:
        return f"{_UNET_TOP[head]}.{param}"
    if m := re.fullmatch(r"down_blocks\.(\d)\.(resnets|attentions)\.(\d)\.(.+)", key):
        i, kind, j, rest = int(m[1]), m[2], int(m[3]), m[4]
        block = f"input_blocks.{3 * i + j + 1}"
        return f"{block}.0.{_resnet(rest)}" if kind == "resnets" else f"{block}.1.{rest}"
    if m := re.fullmatch(r"down_blocks\.(\d)\.downsamplers\.0\.conv\.(.+)", key):
        return f"input_blocks.{3 * (int(m[1]) + 1)}.0.op.{m[2]}"
    if m := re.fullmatch(r"up_blocks\.(\d)\.(resnets|attentions)\.(\d)\.(.+)", key):
        i, kind, j, rest = int(m[1]), m[2], int(m[3]), m[4]
        block = f"output_blocks.{3 * i + j}"
        return f"{block}.0.{_resnet(rest)}" if kind == "resnets" else f"{block}.1.{rest}"
    if m := re.fullmatch(r"up_blocks\.(\d)\.upsamplers\.0\.(.+)", key):
        i = int(m[1])
        return f"output_blocks.{3 * i + 2}.{1 if i == 0 else 2}.{m[2]}"  # up block 0 has no attention
    if m := re.fullmatch(r"mid_block\.resnets\.(\d)\.(.+)", key):
        return f"middle_block.{2 * int(m[1])}.{_resnet(m[2])}"
    if m := re.fullmatch(r"mid_block\.attentions\.0\.(.+)", key):
        return f"middle_block.1.{m[1]}"
    raise KeyError(f"no SD1.x UNet key for {key}")


def vae_key(key: str) -> str:
    """SD1.x VAE: diffusers' up blocks count from the bottom, LDM's `up` from the top."""
    key = key.replace("conv_shortcut", "nin_shortcut").replace("conv_norm_out", "norm_out")
    if m := re.fullmatch(r"encoder\.down_blocks\.(\d)\.resnets\.(\d)\.(.+)", key):
        return f"encoder.down.{m[1]}.block.{m[2]}.{m[3]}"
    if m := re.fullmatch(r"encoder\.down_blocks\.(\d)\.downsamplers\.0\.(.+)", key):
        return f"encoder.down.{m[1]}.downsample.{m[2]}"
    if m := re.fullmatch(r"decoder\.up_blocks\.(\d)\.resnets\.(\d)\.(.+)", key):
        return f"decoder.up.{3 - int(m[1])}.block.{m[2]}.{m[3]}"
    if m := re.fullmatch(r"decoder\.up_blocks\.(\d)\.upsamplers\.0\.(.+)", key):
        return f"decoder.up.{3 - int(m[1])}.upsample.{m[2]}"
    if m := re.fullmatch(r"(encoder|decoder)\.mid_block\.resnets\.(\d)\.(.+)", key):
        return f"{m[1]}.mid.block_{int(m[2]) + 1}.{m[3]}"
    if m := re.fullmatch(r"(encoder|decoder)\.mid_block\.attentions\.0\.(.+)\.(weight|bias)", key):
        return f"{m[1]}.mid.attn_1.{_VAE_ATTENTION[m[2]]}.{m[3]}"
    return key  # conv_in, conv_out, norm_out, quant_conv, post_quant_conv


def to_ldm(
    unet: dict[str, torch.Tensor], vae: dict[str, torch.Tensor], text_encoder: dict[str, torch.Tensor]
) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """The original-layout checkpoint of three diffusers/transformers state dicts, and the map from
    each component-qualified diffusers key ("unet.…", "vae.…", "text_encoder.…") to its LDM key."""
    out: dict[str, torch.Tensor] = {}
    names: dict[str, str] = {}
    for key, value in unet.items():
        names[f"unet.{key}"] = new = UNET_PREFIX + unet_key(key)
        out[new] = value
    for key, value in vae.items():
        names[f"vae.{key}"] = new = VAE_PREFIX + vae_key(key)
        # the LDM VAE's mid-block attention projections are 1×1 convolutions
        out[new] = value[..., None, None] if ".mid.attn_1." in new and value.ndim == 2 else value
    for key, value in text_encoder.items():
        # the file nests CLIP's text model under `text_model.`; transformers ≥ 5.6 has flattened it
        names[f"text_encoder.{key}"] = new = TEXT_PREFIX + "text_model." + key.removeprefix("text_model.")
        out[new] = value
    assert len(out) == len(names), "two diffusers keys mapped to one LDM key"
    return out, names


def sd15_random_parts(seed: int = 0) -> dict[str, dict[str, torch.Tensor]]:
    """fp16 state dicts of SD1.5's UNet, VAE and text encoder (engine/configs/sd15) with random
    values: every tensor a different window of one random pool, so that no two tensors are equal
    and a key mapped to the wrong tensor shows. Shapes come from meta-device models (no memory)."""
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    from engine.sd15 import SD15_CONFIG_DIR

    with torch.device("meta"):
        shapes = {
            "unet": UNet2DConditionModel.from_config(UNet2DConditionModel.load_config(SD15_CONFIG_DIR / "unet")),
            "vae": AutoencoderKL.from_config(AutoencoderKL.load_config(SD15_CONFIG_DIR / "vae")),
            "text_encoder": CLIPTextModel(CLIPTextConfig.from_pretrained(SD15_CONFIG_DIR / "text_encoder")),
        }
    generator = torch.Generator().manual_seed(seed)
    pool = (torch.randn(1 << 26, generator=generator) * 0.02).to(torch.float16)  # 64 M values
    parts: dict[str, dict[str, torch.Tensor]] = {}
    start = 0
    for name, module in shapes.items():
        parts[name] = {}
        for key, meta in module.state_dict().items():
            n = meta.numel()
            start = (start + 7919) % (len(pool) - n)  # a new window per tensor (n ≪ the pool)
            parts[name][key] = pool[start : start + n].reshape(meta.shape).clone()
    return parts

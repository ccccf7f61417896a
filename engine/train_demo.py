"""Train the shapes-world demo model: `diffeditor train-demo OUT [--device cuda]`.

Stages, each resumable from its checkpoint in OUT/checkpoints (a stage that finished is skipped):
    vae      AutoencoderKL on random scenes (random 64-px crops of 128/256-px renders), MSE + L1 + tiny KL
    latents  a fixed set of scenes encoded once (posterior mean and std), and the latent scaling
             factor that gives them unit variance (SD1.5's 0.18215 is the same idea)
    unet     UNet2DConditionModel + CLIPTextModel + the image-prompt parts (CLIP vision tower,
             Resampler, to_k_ip/to_v_ip) trained together, ε-prediction on SD1.5's noise schedule,
             min-SNR weighting, EMA; captions dropped 10 % (CFG) and image prompts dropped 50 %
             (IP-Adapter's objective: the image's own tokens, the zero image's tokens when dropped)
    decoder  the VAE decoder fine-tuned alone (encoder frozen, so the UNet's latent space is
             unchanged), as SD's ft-MSE VAE was: more reconstruction quality for little time
    export   the EMA weights as an fp16 model-set folder in the layout `engine.models` loads,
             with a model card (command, seed, steps, losses, sha256 of every file)

Every random draw comes from generators seeded by (seed, stage, step), so a run resumed from a
checkpoint gives the same weights as one that never stopped (same device and thread count).
The loss log is OUT/train_log.jsonl.
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import json
import math
import os
import shutil
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from diffeditor import world
from engine import tokenizer as bpe
from engine.attention import AttentionControl, install_processors
from engine.image_prompt import cross_attention_layers, image_prompt_shapes
from engine.model_sets import MARKER
from engine.sd15 import SD15_CONFIG_DIR, SD15_CROSS_ATTENTION_DIM, SD15_DOWN_BLOCKS, SD15_UP_BLOCKS
from engine.shapes_model import MARKER_NAME

CROSS_ATTENTION_DIM = SD15_CROSS_ATTENTION_DIM  # SD1.5's text width: the engine's architecture checks apply unchanged
SHAPES_VERSION = 1

VAE_CONFIG: dict = {
    "in_channels": 3,
    "out_channels": 3,
    "down_block_types": ["DownEncoderBlock2D"] * 4,
    "up_block_types": ["UpDecoderBlock2D"] * 4,
    "block_out_channels": [32, 64, 64, 64],
    "layers_per_block": 1,
    "norm_num_groups": 16,
    "latent_channels": 4,
    "sample_size": 128,
    "scaling_factor": 1.0,  # set from the data by the latents stage
}
UNET_CONFIG: dict = {
    "sample_size": 16,
    "in_channels": 4,
    "out_channels": 4,
    "down_block_types": list(SD15_DOWN_BLOCKS),
    "up_block_types": list(SD15_UP_BLOCKS),
    "block_out_channels": [64, 96, 96, 96],
    "layers_per_block": 1,
    "norm_num_groups": 32,
    "attention_head_dim": 4,  # diffusers' legacy name: the number of heads
    "cross_attention_dim": CROSS_ATTENTION_DIM,
}
TEXT_CONFIG: dict = {
    "hidden_size": CROSS_ATTENTION_DIM,
    "intermediate_size": 256,
    "num_hidden_layers": 1,
    "num_attention_heads": 12,
    "hidden_act": "quick_gelu",
    "projection_dim": CROSS_ATTENTION_DIM,
}
VISION_CONFIG: dict = {
    "hidden_size": 64,
    "intermediate_size": 128,
    "num_hidden_layers": 2,  # the engine reads hidden_states[-2]: the first layer's output
    "num_attention_heads": 2,
    "image_size": 224,
    "patch_size": 32,
    "projection_dim": 64,
    "hidden_act": "gelu",
}
RESAMPLER_WIDTH = 64  # one 64-wide head, as the authors' Resampler layout requires
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


@dataclass(frozen=True)
class TrainConfig:
    seed: int = 0
    image_size: int = 128
    vae_steps: int = 1000
    vae_batch: int = 16
    vae_crop: int = 64
    vae_lr: float = 1e-3
    vae_kl: float = 1e-6
    scenes: int = 8000  # encoded once for the UNet stage
    unet_steps: int = 2000
    unet_batch: int = 32
    unet_lr: float = 5e-4
    warmup: int = 200
    caption_dropout: float = 0.1
    image_dropout: float = 0.5
    min_snr_gamma: float = 5.0
    ema_decay: float = 0.999
    checkpoint_every: int = 200
    decoder_steps: int = 1500  # decoder-only fine-tuning after the UNet: the latent space stays fixed
    decoder_lr: float = 5e-4


def _log(out: Path, record: dict) -> None:
    with (out / "train_log.jsonl").open("a") as f:
        f.write(json.dumps(record) + "\n")
    print(json.dumps(record), flush=True)


def _rng(cfg: TrainConfig, stage: str, step: int) -> np.random.Generator:
    return np.random.default_rng([cfg.seed, sum(map(ord, stage)), step])


def _lr(cfg: TrainConfig, base: float, step: int, total: int) -> float:
    if step < cfg.warmup:
        return base * (step + 1) / cfg.warmup
    progress = (step - cfg.warmup) / max(1, total - cfg.warmup)
    return base * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress)))


def _images_tensor(images: list) -> torch.Tensor:
    arr = np.stack([np.asarray(im, dtype=np.float32) for im in images]) / 127.5 - 1
    return torch.from_numpy(arr).permute(0, 3, 1, 2).contiguous()


def _save(path: Path, state: dict) -> None:
    tmp = path.with_suffix(".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)  # a crash mid-write never leaves a broken checkpoint


# --- stage 1: the autoencoder -----------------------------------------------------------------


def build_vae(seed: int) -> nn.Module:
    from diffusers import AutoencoderKL

    torch.manual_seed(seed)
    return AutoencoderKL(**VAE_CONFIG)


def _vae_batch(cfg: TrainConfig, rng: np.random.Generator) -> torch.Tensor:
    """Random crops of random scenes, rendered at 128 or 256 px (so edges come at both scales)."""
    crops = []
    for _ in range(cfg.vae_batch):
        size = cfg.image_size * (2 if rng.random() < 0.5 else 1)
        img = world.random_scene(rng).render(size)
        x0, y0 = rng.integers(0, size - cfg.vae_crop + 1, size=2)
        crops.append(img.crop((int(x0), int(y0), int(x0) + cfg.vae_crop, int(y0) + cfg.vae_crop)))
    return _images_tensor(crops)


def _resume(ckpt: Path, model: nn.Module, opt: torch.optim.Optimizer, device: torch.device) -> int:
    """Load a stage's checkpoint into `model` and `opt` if there is one; the step it reached."""
    if not ckpt.exists():
        return 0
    state = torch.load(ckpt, map_location=device, weights_only=False)
    model.load_state_dict(state["model"])
    opt.load_state_dict(state["opt"])
    return int(state["step"])


def _reconstruction_stage(
    cfg: TrainConfig,
    out: Path,
    vae: nn.Module,
    device: torch.device,
    *,
    stage: str,
    params: list[nn.Parameter],
    steps: int,
    lr: float,
    kl: float | None,
    seed_base: int,
) -> nn.Module:
    """Train `params` of the autoencoder to reconstruct random crops. kl None: the encoder is
    frozen (no gradient through it, no KL term)."""
    ckpt = out / "checkpoints" / f"{stage}.pt"
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=0.0)
    step = _resume(ckpt, vae, opt, device)
    vae.train()
    t0 = time.time()
    while step < steps:
        torch.manual_seed(cfg.seed * seed_base + step)
        x = _vae_batch(cfg, _rng(cfg, stage, step)).to(device)
        for group in opt.param_groups:
            group["lr"] = _lr(cfg, lr, step, steps)
        with torch.set_grad_enabled(kl is not None):
            posterior = vae.encode(x).latent_dist
            z = posterior.sample()
        recon = vae.decode(z).sample
        mse = F.mse_loss(recon, x)
        loss = mse + F.l1_loss(recon, x)
        if kl is not None:
            loss = loss + kl * posterior.kl().mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        step += 1
        if step % 20 == 0 or step == steps:
            psnr = 10 * math.log10(4 / max(mse.item(), 1e-10))
            _log(out, {"stage": stage, "step": step, "loss": loss.item(), "psnr_db": psnr, "s": time.time() - t0})
        if step % cfg.checkpoint_every == 0 or step == steps:
            _save(ckpt, {"model": vae.state_dict(), "opt": opt.state_dict(), "step": step})
    return vae.eval().requires_grad_(False)


def train_vae(cfg: TrainConfig, out: Path, device: torch.device) -> nn.Module:
    """Stage 1: the whole autoencoder, MSE + L1 + a tiny KL."""
    vae = build_vae(cfg.seed).to(device)
    return _reconstruction_stage(
        cfg, out, vae, device, stage="vae", params=list(vae.parameters()), steps=cfg.vae_steps,
        lr=cfg.vae_lr, kl=cfg.vae_kl, seed_base=100003,
    )  # fmt: skip


def finetune_decoder(cfg: TrainConfig, out: Path, vae: nn.Module, device: torch.device) -> nn.Module:
    """Stage 4: the decoder (and post_quant_conv) alone, on fresh crops, decoding posterior samples
    of the frozen encoder, as the UNet's latents are."""
    vae = copy.deepcopy(vae).to(device).requires_grad_(False)
    params = [*vae.decoder.parameters(), *vae.post_quant_conv.parameters()]
    for p in params:
        p.requires_grad_(True)
    return _reconstruction_stage(
        cfg, out, vae, device, stage="decoder", params=params, steps=cfg.decoder_steps,
        lr=cfg.decoder_lr, kl=None, seed_base=100019,
    )  # fmt: skip


# --- stage 2: the encoded scenes --------------------------------------------------------------


def encode_scenes(cfg: TrainConfig, out: Path, vae: nn.Module, device: torch.device) -> dict:
    path = out / "checkpoints" / "latents.pt"
    if path.exists():
        return torch.load(path, weights_only=False)
    rng = _rng(cfg, "scenes", 0)
    scenes = [world.random_scene(rng) for _ in range(cfg.scenes)]
    means, stds, pixels = [], [], []
    with torch.no_grad():
        for start in range(0, len(scenes), 64):
            images = [s.render(cfg.image_size) for s in scenes[start : start + 64]]
            pixels.append(torch.from_numpy(np.stack([np.asarray(im) for im in images])))
            dist = vae.encode(_images_tensor(images).to(device)).latent_dist
            means.append(dist.mean.cpu())
            stds.append(dist.std.cpu())
    mean = torch.cat(means)
    scaling = 1.0 / float(mean.std())
    data = {
        "mean": mean,
        "std": torch.cat(stds),
        "pixels": torch.cat(pixels),  # uint8 (N, H, W, 3), for the image prompt
        "captions": [s.caption() for s in scenes],
        "scaling_factor": scaling,
    }
    torch.save(data, path)
    _log(out, {"stage": "latents", "scenes": len(scenes), "scaling_factor": scaling})
    return data


# --- stage 3: UNet, text encoder and image prompt ---------------------------------------------


class ImagePromptParts(nn.Module):
    """The trainable image-prompt encoder: CLIP vision tower, Resampler and per-layer K/V."""

    def __init__(self, unet: nn.Module, seed: int) -> None:
        super().__init__()
        from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

        torch.manual_seed(seed + 1)
        self.vision = CLIPVisionModelWithProjection(CLIPVisionConfig(**VISION_CONFIG))
        proj_state = _init_resampler_state(seed)
        self.resampler = unet._convert_ip_adapter_image_proj_to_diffusers(proj_state, low_cpu_mem_usage=False)
        self.names = []
        self.k = nn.ModuleList()
        self.v = nn.ModuleList()
        for _, name, attn in cross_attention_layers(unet):
            self.names.append(name)
            self.k.append(nn.Linear(CROSS_ATTENTION_DIM, attn.to_k.out_features, bias=False))
            self.v.append(nn.Linear(CROSS_ATTENTION_DIM, attn.to_v.out_features, bias=False))

    def layers(self) -> dict[str, tuple[nn.Linear, nn.Linear]]:
        return {name: (k, v) for name, k, v in zip(self.names, self.k, self.v)}

    def tokens(self, pixels: torch.Tensor) -> torch.Tensor:
        features = self.vision(pixels, output_hidden_states=True).hidden_states[-2]
        return self.resampler(features)


def _init_resampler_state(seed: int) -> dict[str, torch.Tensor]:
    """The authors' Resampler layout, initialised like a fresh PyTorch module (LayerNorms at 1/0)."""
    gen = torch.Generator().manual_seed(seed + 2)
    state = {}
    for key, shape in image_prompt_shapes(VISION_CONFIG["hidden_size"], RESAMPLER_WIDTH, CROSS_ATTENTION_DIM).items():
        if key == "latents":
            state[key] = torch.randn(shape, generator=gen) * shape[-1] ** -0.5
        elif len(shape) == 1:
            state[key] = torch.zeros(shape) if key.endswith("bias") else torch.ones(shape)
        else:
            state[key] = torch.randn(shape, generator=gen) * shape[1] ** -0.5
    return state


def resampler_to_authors(module: nn.Module) -> dict[str, torch.Tensor]:
    """diffusers' IPAdapterPlusImageProjection state → the authors' ip_sd15_64 `image_proj` keys
    (the inverse of diffusers' IP-Adapter-Plus conversion, §2.2)."""
    src = module.state_dict()
    out = {k: src[k] for k in ("latents", "proj_in.weight", "proj_in.bias", "proj_out.weight", "proj_out.bias")}
    out["norm_out.weight"], out["norm_out.bias"] = src["norm_out.weight"], src["norm_out.bias"]
    i = 0
    while f"layers.{i}.ln0.weight" in src:
        p = f"layers.{i}"
        for a, b in (("ln0", "0.norm1"), ("ln1", "0.norm2"), ("ff.0", "1.0")):
            out[f"{p}.{b}.weight"], out[f"{p}.{b}.bias"] = src[f"{p}.{a}.weight"], src[f"{p}.{a}.bias"]
        out[f"{p}.0.to_q.weight"] = src[f"{p}.attn.to_q.weight"]
        out[f"{p}.0.to_kv.weight"] = torch.cat([src[f"{p}.attn.to_k.weight"], src[f"{p}.attn.to_v.weight"]])
        out[f"{p}.0.to_out.weight"] = src[f"{p}.attn.to_out.0.weight"]
        out[f"{p}.1.1.weight"] = src[f"{p}.ff.1.net.0.proj.weight"]
        out[f"{p}.1.3.weight"] = src[f"{p}.ff.1.net.2.weight"]
        i += 1
    return out


def clip_pixels(pixels_uint8: torch.Tensor, device: torch.device) -> torch.Tensor:
    """(B, H, W, 3) uint8 → the CLIP input: bicubic to 224 and the OpenAI mean/std. The engine
    squashes to 256 with PIL first (§2.1); for square scenes the difference is resampling only."""
    x = pixels_uint8.permute(0, 3, 1, 2).float().div(255).to(device)
    x = F.interpolate(x, size=(224, 224), mode="bicubic", align_corners=False).clamp(0, 1)
    mean = torch.tensor(CLIP_MEAN, device=device)[None, :, None, None]
    std = torch.tensor(CLIP_STD, device=device)[None, :, None, None]
    return (x - mean) / std


def build_text_encoder(seed: int) -> nn.Module:
    from transformers import CLIPTextConfig, CLIPTextModel

    words = tuple(world.caption_words())
    bos, eos = bpe.special_token_ids(words)
    torch.manual_seed(seed + 3)
    config = CLIPTextConfig(
        vocab_size=bpe.vocab_size(words),
        max_position_embeddings=bpe.MAX_LENGTH,
        bos_token_id=bos,
        eos_token_id=eos,
        pad_token_id=eos,
        **TEXT_CONFIG,
    )
    return CLIPTextModel(config)


def alphas_cumprod() -> torch.Tensor:
    """SD1.5's training schedule: scaled-linear betas 0.00085–0.012 over 1000 steps."""
    betas = torch.linspace(0.00085**0.5, 0.012**0.5, 1000, dtype=torch.float64) ** 2
    return torch.cumprod(1 - betas, 0).float()


def train_unet(cfg: TrainConfig, out: Path, data: dict, device: torch.device, tokenizer: object) -> dict:
    from diffusers import UNet2DConditionModel

    torch.manual_seed(cfg.seed + 4)
    unet = UNet2DConditionModel(**UNET_CONFIG).to(device)
    text = build_text_encoder(cfg.seed).to(device)
    ip = ImagePromptParts(unet, cfg.seed).to(device)
    control = AttentionControl(mode="inject", ip_scale=1.0)  # the engine's own processors, IP always on
    install_processors(unet, control, ip.layers())
    modules = nn.ModuleDict({"unet": unet, "text": text, "ip": ip})
    ema = copy.deepcopy(modules).requires_grad_(False)
    opt = torch.optim.AdamW(modules.parameters(), lr=cfg.unet_lr, weight_decay=0.01)
    ckpt = out / "checkpoints" / "unet.pt"
    step = 0
    if ckpt.exists():
        state = torch.load(ckpt, map_location=device, weights_only=False)
        modules.load_state_dict(state["model"])
        ema.load_state_dict(state["ema"])
        opt.load_state_dict(state["opt"])
        step = state["step"]
    install_processors(ema["unet"], AttentionControl(mode="inject", ip_scale=1.0), ema["ip"].layers())

    ids = tokenizer(
        data["captions"], padding="max_length", max_length=bpe.MAX_LENGTH, truncation=True, return_tensors="pt"
    ).input_ids
    empty = tokenizer([""], padding="max_length", max_length=bpe.MAX_LENGTH, return_tensors="pt").input_ids
    acp = alphas_cumprod().to(device)
    scale = data["scaling_factor"]
    n = len(data["captions"])
    autocast = torch.autocast(device.type, dtype=torch.bfloat16)
    modules.train()
    t0 = time.time()
    losses: list[float] = []
    while step < cfg.unet_steps:
        rng = _rng(cfg, "unet", step)
        gen = torch.Generator().manual_seed(cfg.seed * 100003 + step)
        idx = torch.from_numpy(rng.integers(0, n, size=cfg.unet_batch))
        z0 = data["mean"][idx] + data["std"][idx] * torch.randn(data["mean"][idx].shape, generator=gen)
        z0 = (z0 * scale).to(device)
        t = torch.randint(0, 1000, (cfg.unet_batch,), generator=gen).to(device)
        noise = torch.randn(z0.shape, generator=gen).to(device)
        a = acp[t][:, None, None, None]
        zt = a.sqrt() * z0 + (1 - a).sqrt() * noise
        tokens = ids[idx].clone()
        tokens[torch.from_numpy(rng.random(cfg.unet_batch) < cfg.caption_dropout)] = empty[0]
        pixels = clip_pixels(data["pixels"][idx], device)
        pixels[torch.from_numpy(rng.random(cfg.unet_batch) < cfg.image_dropout).to(device)] = 0
        for group in opt.param_groups:
            group["lr"] = _lr(cfg, cfg.unet_lr, step, cfg.unet_steps)
        with autocast:
            context = torch.cat([text(tokens.to(device)).last_hidden_state, ip.tokens(pixels)], 1)
            pred = unet(zt, t, encoder_hidden_states=context).sample.float()
        snr = a.flatten() / (1 - a.flatten())
        weight = torch.clamp(snr, max=cfg.min_snr_gamma) / snr  # min-SNR-γ for ε-prediction
        loss = (weight * (pred - noise).pow(2).mean(dim=(1, 2, 3))).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(modules.parameters(), 1.0)
        opt.step()
        step += 1
        decay = min(cfg.ema_decay, (1 + step) / (10 + step))
        with torch.no_grad():
            for e, p in zip(ema.parameters(), modules.parameters()):
                e.lerp_(p, 1 - decay)
        losses.append(loss.item())
        if step % 20 == 0 or step == cfg.unet_steps:
            _log(out, {"stage": "unet", "step": step, "loss": float(np.mean(losses[-20:])), "s": time.time() - t0})
        if step % cfg.checkpoint_every == 0 or step == cfg.unet_steps:
            state = {"model": modules.state_dict(), "ema": ema.state_dict(), "opt": opt.state_dict(), "step": step}
            _save(ckpt, state)
    return {"unet": ema["unet"], "text": ema["text"], "ip": ema["ip"]}


# --- stage 4: export --------------------------------------------------------------------------

CARD = """\
# diffeditor shapes-world demo model (version {version})

A small model of the Stable Diffusion 1.5 family trained from scratch on the procedural shapes
world (`diffeditor/world.py`): flat-coloured discs, squares, rectangles and triangles and cartoon
faces on flat backgrounds, 128 px. It edits scenes of that world; it knows nothing else. Load
SD1.5 (`diffeditor models download DIR`) for photographs.

Same layout and loaders as real weights: diffusers `UNet2DConditionModel` (SD1.5 block layout,
widths {unet_widths}), `AutoencoderKL` (×8, 4 latent channels, scaling factor {scaling:.5f} from
the data), a {text_layers}-layer `CLIPTextModel` (width 768) with a BPE tokenizer learned from the
captions, DDIM on SD1.5's schedule, and the image-prompt encoder (CLIP vision tower, 64-token
Resampler, `to_k_ip`/`to_v_ip`) trained jointly with IP-Adapter's objective. fp16 safetensors.

## Reproduce

    {command}

seed {seed}; VAE {vae_steps} steps (batch {vae_batch}, {vae_crop}-px crops); UNet {unet_steps}
steps (batch {unet_batch}) on {scenes} encoded scenes; decoder fine-tuning {decoder_steps} steps;
trained on {device} in {minutes:.0f} min.

## Final figures

{figures}

## Files (sha256)

{files}
"""


def _state_fp16(module: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().to(torch.float16).cpu().contiguous() for k, v in module.state_dict().items()}


def export(cfg: TrainConfig, out: Path, vae: nn.Module, trained: dict, scaling: float, summary: dict) -> Path:
    from diffusers import DDIMScheduler
    from safetensors.torch import save_file

    from engine.model_sets import model_index

    model = out / "model"
    if model.exists():
        shutil.rmtree(model)
    model.mkdir(parents=True)
    vae = copy.deepcopy(vae).to(torch.float16)
    vae.register_to_config(scaling_factor=scaling)
    vae.save_pretrained(model / "vae", safe_serialization=True)
    unet = copy.deepcopy(trained["unet"]).to(torch.float16)
    from diffusers.models.attention_processor import AttnProcessor2_0

    unet.set_attn_processor(AttnProcessor2_0())
    unet.save_pretrained(model / "unet", safe_serialization=True)
    copy.deepcopy(trained["text"]).to(torch.float16).save_pretrained(model / "text_encoder")
    bpe.write_tokenizer(model / "tokenizer", tuple(world.caption_words()))
    scheduler_config = json.loads((SD15_CONFIG_DIR / "scheduler" / "scheduler_config.json").read_text())
    DDIMScheduler.from_config(scheduler_config).save_pretrained(model / "scheduler")
    ip = trained["ip"]
    copy.deepcopy(ip.vision).to(torch.float16).save_pretrained(model / "image_encoder")
    flat = {f"image_proj.{k}": v for k, v in resampler_to_authors(ip.resampler).items()}
    for (k, _, _), to_k, to_v in zip(cross_attention_layers(trained["unet"]), ip.k, ip.v):
        flat[f"ip_adapter.{k}.to_k_ip.weight"] = to_k.weight
        flat[f"ip_adapter.{k}.to_v_ip.weight"] = to_v.weight
    (model / "image_prompt").mkdir()
    save_file(
        {k: v.detach().to(torch.float16).contiguous() for k, v in flat.items()},
        str(model / "image_prompt" / "ip_sd15_64.safetensors"),
    )
    (model / "model_index.json").write_text(json.dumps(model_index(), indent=2) + "\n")
    marker = {
        "name": MARKER_NAME,
        "version": SHAPES_VERSION,
        "seed": cfg.seed,
        "random_weights": False,
        "resolution": cfg.image_size,  # the default working size: it does not edit far from it
    }
    files = sorted(p for p in model.rglob("*") if p.is_file())
    listing = "\n".join(f"    {hashlib.sha256(p.read_bytes()).hexdigest()}  {p.relative_to(model)}" for p in files)
    figures = "\n".join(f"- {k}: {v}" for k, v in summary.items())
    (model / "README.md").write_text(
        CARD.format(
            version=SHAPES_VERSION,
            unet_widths=UNET_CONFIG["block_out_channels"],
            scaling=scaling,
            text_layers=TEXT_CONFIG["num_hidden_layers"],
            command=summary.get("command", "diffeditor train-demo OUT"),
            seed=cfg.seed,
            vae_steps=cfg.vae_steps,
            vae_batch=cfg.vae_batch,
            vae_crop=cfg.vae_crop,
            unet_steps=cfg.unet_steps,
            unet_batch=cfg.unet_batch,
            scenes=cfg.scenes,
            decoder_steps=cfg.decoder_steps,
            device=summary.get("device", "cpu"),
            minutes=summary.get("minutes", 0.0),
            figures=figures,
            files=listing,
        )
    )
    (model / MARKER).write_text(json.dumps(marker, indent=2) + "\n")
    return model


def _final_figures(cfg: TrainConfig, out: Path) -> dict:
    records = [json.loads(line) for line in (out / "train_log.jsonl").read_text().splitlines() if line.strip()]
    last = {r["stage"]: r for r in records}
    figures = {}
    if "vae" in last:
        figures["VAE final training PSNR (64-px crops, one batch, dB)"] = round(last["vae"]["psnr_db"], 2)
    if "decoder" in last:
        figures["decoder fine-tuning final PSNR (64-px crops, one batch, dB)"] = round(last["decoder"]["psnr_db"], 2)
    if "unet" in last:
        figures["UNet final loss (min-SNR weighted ε MSE, last 20 steps)"] = round(last["unet"]["loss"], 4)
    seconds = sum(r["s"] for r in last.values() if "s" in r)
    figures["training seconds (last run of each stage)"] = round(seconds)
    return figures


def train(cfg: TrainConfig, out: Path, device: str = "cpu", command: str = "") -> Path:
    out = Path(out)
    (out / "checkpoints").mkdir(parents=True, exist_ok=True)
    (out / "config.json").write_text(json.dumps(asdict(cfg), indent=2) + "\n")
    dev = torch.device(device)
    torch.use_deterministic_algorithms(True, warn_only=True)
    start = time.time()
    vae = train_vae(cfg, out, dev)
    data = encode_scenes(cfg, out, vae, dev)
    tok_dir = bpe.write_tokenizer(out / "checkpoints" / "tokenizer", tuple(world.caption_words()))
    from transformers import CLIPTokenizer

    trained = train_unet(cfg, out, data, dev, CLIPTokenizer.from_pretrained(tok_dir))
    vae = finetune_decoder(cfg, out, vae, dev)
    summary = {
        "command": command or f"diffeditor train-demo {out}",
        "device": device,
        "minutes": (time.time() - start) / 60,
        **_final_figures(cfg, out),
    }
    return export(cfg, out, vae.cpu(), {k: v.cpu() for k, v in trained.items()}, data["scaling_factor"], summary)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="diffeditor train-demo", description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path, help="output folder: checkpoints/, train_log.jsonl, model/")
    parser.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    parser.add_argument("--seed", type=int, default=TrainConfig.seed)
    parser.add_argument("--vae-steps", type=int, default=TrainConfig.vae_steps)
    parser.add_argument("--unet-steps", type=int, default=TrainConfig.unet_steps)
    parser.add_argument("--scenes", type=int, default=TrainConfig.scenes)
    parser.add_argument("--decoder-steps", type=int, default=TrainConfig.decoder_steps)
    args = parser.parse_args(argv)
    cfg = TrainConfig(
        seed=args.seed,
        vae_steps=args.vae_steps,
        unet_steps=args.unet_steps,
        scenes=args.scenes,
        decoder_steps=args.decoder_steps,
    )
    model = train(cfg, args.out, args.device, command="diffeditor train-demo " + " ".join(argv or sys.argv[1:]))
    print(f"model written to {model}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

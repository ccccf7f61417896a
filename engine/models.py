"""Loading the SD1.5 components, the CLIP image encoder and the image-prompt checkpoint (§1, §2.2).

CONTRACT (used by the rest of the engine; keep these names and meanings):

    load_models(spec, device=None, dtype=None) -> Models
        spec: "demo" | a model-set folder | a hub id | a single checkpoint file (.safetensors/.ckpt)
        device: None = "cuda" if available else "cpu"
        dtype: None = fp32 on CPU, fp16 on CUDA; "bf16"/"fp16"/"fp32" accepted (CUDA only for half)

The model-set folder layout (real and demo weights alike):
    model_index.json, unet/, vae/, text_encoder/, tokenizer/, scheduler/   (diffusers SD1.5)
    image_encoder/                 (CLIPVisionModelWithProjection)
    image_prompt/ip_sd15_64.bin    (authors' key layout: {"image_proj": ..., "ip_adapter": ...})
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


@dataclass
class Models:
    """Everything the editor needs, loaded once and shared by every edit (read-only)."""

    unet: nn.Module  # diffusers UNet2DConditionModel, eval, requires_grad False
    vae: nn.Module  # diffusers AutoencoderKL
    text_encoder: nn.Module  # transformers CLIPTextModel
    tokenizer: object  # transformers CLIPTokenizer
    scheduler: object  # diffusers DDIMScheduler (SD1.5 config); only its tables are used
    image_encoder: nn.Module | None  # transformers CLIPVisionModelWithProjection
    image_proj: nn.Module | None  # the Resampler (diffusers IPAdapterPlusImageProjection)
    # attn2 processor name (key of unet.attn_processors) -> (to_k_ip, to_v_ip) Linear layers
    ip_layers: dict[str, tuple[nn.Linear, nn.Linear]] | None
    device: torch.device
    dtype: torch.dtype
    model_id: str  # stable identity of the weights, part of the inversion-cache key
    is_demo: bool  # tiny random weights: outputs prove the machinery, never quality

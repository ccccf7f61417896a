"""`Models`: the loaded components every edit uses. A leaf of the engine's import graph (only
`engine.sd15` below it), so that the loaders (`engine.models`), the image-prompt encoder
(`engine.image_prompt`) and the editor all import it one way."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from engine.sd15 import CPU_DEFAULT_RESOLUTION, GPU_DEFAULT_RESOLUTION


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
    is_demo: bool  # a project-built model (the shapes-world demo or the tiny random one), not real weights
    random_weights: bool = False  # the tiny random model: outputs prove the machinery, never quality
    trained_resolution: int | None = None  # a project-built model's training size (its marker's "resolution")

    def default_resolution(self) -> int:
        """The working size of an edit that names no `max_resolution`: a project-built model's own
        training size (the demo model does not edit far from it); for real weights the authors'
        768 on a GPU, SD1.5's native 512 on a CPU, where 768 takes minutes per edit."""
        if self.trained_resolution is not None:
            return self.trained_resolution
        return GPU_DEFAULT_RESOLUTION if self.device.type == "cuda" else CPU_DEFAULT_RESOLUTION

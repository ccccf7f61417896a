"""Attention processors: the self-attention memory bank (§3.3, §7) and decoupled image-prompt
cross-attention with step gating (§2.1.5–7), installed once on the one UNet in memory.

Every processor reads one shared `AttentionControl`, which the editor sets around each UNet call
with `record()` or `inject(...)` (plain attention outside them). Modern diffusers passes the same
kwargs to attn1 and attn2 and drops undeclared ones (§13), so the per-call state lives in that
object rather than in `cross_attention_kwargs`.

Modes:
    plain    standard attention; image tokens (if any) ignored. Guidance features, rollback.
    record   decoder self-attention stores K, V (DDIM inversion, §3.3).
    inject   decoder self-attention K, V replaced / concatenated / composited (§7).

The processors see only the current call's K/V (`kv`, one step's view of the bank), never a step
index: a compiled UNet (`torch.compile`) then has nothing that changes every step to guard on.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from engine.preprocess import resize_nearest
from engine.schedule import KvOp

TEXT_TOKENS = 77
IMAGE_TOKENS = 64

Mode = Literal["plain", "record", "inject"]
KV = tuple[torch.Tensor, torch.Tensor]  # (K, V), each (B, N, C) as projected (before the head split)
StepKv = dict[str, KV]  # layer name -> this step's K/V
KvBank = dict[str, dict[int, KV]]  # layer name -> step index -> K/V
CompositeIndex = dict[int, tuple[torch.Tensor, torch.Tensor]]


def step_kv(bank: KvBank, i: int) -> StepKv:
    """Step i's view of the bank: what `inject` hands the processors for that step's call."""
    return {layer: steps[i] for layer, steps in bank.items() if i in steps}


@dataclass
class AttentionControl:
    mode: Mode = "plain"
    kv_op: KvOp | None = None
    ip_scale: float = 0.0  # 0 outside the image-prompt window
    kv: StepKv = field(default_factory=dict)  # record: filled by the call; inject: read by it
    # composite injection (§7): token count N -> (background indices into the base K/V,
    # object indices into the reference K/V); both batch rows come from the bank.
    composite_index: CompositeIndex = field(default_factory=dict)
    step: int = -1  # the sampling step of the current call, for observers only (processors never read it)

    @contextmanager
    def record(self, step: int = -1) -> Iterator[StepKv]:
        """For the UNet calls inside: decoder self-attention stores its K/V in the dict yielded."""
        recorded: StepKv = {}
        with self._set(mode="record", step=step, kv=recorded, kv_op=None, ip_scale=0.0):
            yield recorded

    @contextmanager
    def inject(
        self,
        step: int,
        kv: StepKv | None,
        kv_op: KvOp | None,
        ip_scale: float = 0.0,
        composite_index: CompositeIndex | None = None,
    ) -> Iterator[None]:
        """For the UNet calls inside: self-attention K/V from `kv` by `kv_op` (None: untouched) and
        the image-prompt branch at `ip_scale` (§7, §2.1.7)."""
        with self._set(
            mode="inject",
            step=step,
            kv=kv or {},
            kv_op=kv_op,
            ip_scale=ip_scale,
            composite_index=composite_index or {},
        ):
            yield

    @contextmanager
    def _set(self, **state: object) -> Iterator[None]:
        assert self.mode == "plain", f"attention control already in {self.mode} mode"
        for name, value in state.items():
            setattr(self, name, value)
        try:
            yield
        finally:  # back to plain, holding no tensors (the bank may be GPU memory)
            self.mode, self.step, self.kv_op, self.ip_scale = "plain", -1, None, 0.0
            self.kv, self.composite_index = {}, {}

    def self_kv(self, layer: str, k: torch.Tensor, v: torch.Tensor) -> KV:
        if self.mode == "record":
            self.kv[layer] = (k.detach(), v.detach())
            return k, v
        if self.mode != "inject" or self.kv_op is None:
            return k, v
        k_src, v_src = self.kv[layer]
        b = k.shape[0]
        if self.kv_op == "replace":
            return _batch(k_src, b), _batch(v_src, b)
        if self.kv_op == "concat":
            return torch.cat([k, _batch(k_src, b)], 1), torch.cat([v, _batch(v_src, b)], 1)
        bg, obj = self.composite_index[k_src.shape[1]]
        k_c = torch.cat([k_src[0:1, bg], k_src[1:2, obj]], 1)
        v_c = torch.cat([v_src[0:1, bg], v_src[1:2, obj]], 1)
        return _batch(k_c, b), _batch(v_c, b)


def _batch(x: torch.Tensor, b: int) -> torch.Tensor:
    """The cached K/V (batch 1) for every row of the current batch (both CFG halves)."""
    return x if x.shape[0] == b else x[:1].expand(b, -1, -1)


def _attend(attn: nn.Module, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    b, heads = q.shape[0], attn.heads
    d = q.shape[-1] // heads

    def split(x: torch.Tensor) -> torch.Tensor:
        return x.reshape(b, -1, heads, d).transpose(1, 2)

    out = F.scaled_dot_product_attention(split(q), split(k), split(v))
    return out.transpose(1, 2).reshape(b, -1, heads * d)


class EditorAttnProcessor:
    """One processor per attention layer. `banked` marks the decoder self-attention layers whose
    K/V are recorded and injected; `ip` holds the layer's (to_k_ip, to_v_ip) for cross-attention."""

    def __init__(
        self,
        name: str,
        control: AttentionControl,
        banked: bool = False,
        ip: tuple[nn.Linear, nn.Linear] | None = None,
    ) -> None:
        self.name = name
        self.control = control
        self.banked = banked
        self.ip = ip

    def __call__(
        self,
        attn: nn.Module,
        hidden_states: torch.Tensor,
        encoder_hidden_states: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        temb: torch.Tensor | None = None,
        **kwargs: object,
    ) -> torch.Tensor:
        # what install_processors cannot see from the layer: SD1.5's transformer blocks pass
        # neither masks nor 4-D maps, and this processor implements neither
        if attention_mask is not None or hidden_states.ndim != 3:
            raise NotImplementedError(f"{self.name}: attention masks and 4-D inputs are not supported")
        residual = hidden_states
        q = attn.to_q(hidden_states)
        ip_tokens = None
        if encoder_hidden_states is None:  # self-attention
            k, v = attn.to_k(hidden_states), attn.to_v(hidden_states)
            if self.banked:
                k, v = self.control.self_kv(self.name, k, v)
        else:
            context = encoder_hidden_states
            if context.shape[1] > TEXT_TOKENS:
                # The release splits off only the last 64 tokens as image tokens; with two prompt
                # images the base image's tokens stay with the text (§2.3, reproduced).
                context, ip_tokens = context[:, :-IMAGE_TOKENS], context[:, -IMAGE_TOKENS:]
            k, v = attn.to_k(context), attn.to_v(context)
        out = _attend(attn, q, k, v)
        scale = self.control.ip_scale
        if ip_tokens is not None and self.ip is not None and scale != 0 and self.control.mode == "inject":
            to_k_ip, to_v_ip = self.ip
            out = out + scale * _attend(attn, q, to_k_ip(ip_tokens), to_v_ip(ip_tokens))
        out = attn.to_out[1](attn.to_out[0](out))
        if attn.residual_connection:
            out = out + residual
        return out / attn.rescale_output_factor


def composite_indices(
    base_mask: torch.Tensor, ref_mask: torch.Tensor, size: tuple[int, int], token_counts: set[int]
) -> dict[int, tuple[torch.Tensor, torch.Tensor]]:
    """For each layer's token count N: r = √(H·W/N), the full-resolution masks nearest-downsampled
    to (H/r, W/r); base background (mask < 0.5) and reference object (mask > 0.5) token indices (§7)."""
    w, h = size
    out = {}
    for n in token_counts:
        r = (h * w / n) ** 0.5
        grid = (round(h / r), round(w / r))
        base, ref = (resize_nearest(m, grid).flatten() for m in (base_mask, ref_mask))
        out[n] = ((~base).nonzero().flatten(), ref.nonzero().flatten())
    return out


def install_processors(
    unet: nn.Module, control: AttentionControl, ip_layers: dict[str, tuple[nn.Linear, nn.Linear]] | None
) -> list[str]:
    """Install editor processors on every attention layer; returns the banked layer names
    (attn1 of up_blocks.1–3, §3.3)."""
    procs: dict[str, EditorAttnProcessor] = {}
    banked = []
    ip_layers = ip_layers or {}
    for name in unet.attn_processors:
        layer = name.removesuffix(".processor")
        _check_supported(layer, unet.get_submodule(layer))
        is_self = name.endswith("attn1.processor")
        bank = is_self and name.startswith("up_blocks.")
        if bank:
            banked.append(name)
        ip = None if is_self else ip_layers.get(name, ip_layers.get(name.removesuffix(".processor")))
        procs[name] = EditorAttnProcessor(name, control, banked=bank, ip=ip)
    unet.set_attn_processor(procs)
    unet._editor_control = control  # which editor's control the processors read
    return banked


# Layer features that diffusers' own processor applies and EditorAttnProcessor skips (SD1.5 uses
# none of them): a model that did would be edited silently wrong, so installing refuses it.
_SKIPPED = ("spatial_norm", "group_norm", "norm_q", "norm_k", "add_k_proj", "add_v_proj")


def _check_supported(name: str, attn: nn.Module) -> None:
    used = [f for f in _SKIPPED if getattr(attn, f, None) is not None]
    if getattr(attn, "norm_cross", False):
        used.append("norm_cross")
    inner = attn.to_q.out_features
    if abs(float(getattr(attn, "scale", (inner // attn.heads) ** -0.5)) - (inner // attn.heads) ** -0.5) > 1e-9:
        used.append("scale")  # _attend uses SDPA's default 1/√d
    if used:
        raise NotImplementedError(f"attention layer {name} uses {', '.join(used)}, which the editor's processor skips")

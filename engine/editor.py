"""The editor: one edit from request to image, in the order of §11.1 and §11.2.

    preprocess → image prompt → inversion (cached) → sampling (guidance, SDE, time travel) → decode

Each stage is timed, each network evaluation counted (EditStats), progress is reported per step
and cancellation checked between steps; a caller that asks for them gets a picture of the step's
x̂0 every few sampling steps (engine/previews.py).
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from functools import partial

import numpy as np
import torch
from PIL import Image

from engine import budget, previews
from engine.attention import AttentionControl, CompositeIndex, composite_indices, install_processors, step_kv
from engine.compiled import CompileMode, begin_step, compile_unet
from engine.components import Models
from engine.cost import CostMeter, CostTable
from engine.errors import Canceled, InvalidInput, NonFiniteLatent
from engine.features import decoder_features, on_grid
from engine.inversion import Inversion, InversionCache, invert
from engine.kv_offload import KvPrefetch, to_host
from engine.preprocess import resize_image, to_image, to_tensor, vae_decode, vae_encode, working_size
from engine.previews import LatentProjection, PreviewCallback, due
from engine.requests import EditRequest, EditResult, EditStats
from engine.sampler import AlphaTable, ddim_step, sample
from engine.schedule import StepPlan, build_schedule, ddim_timesteps
from engine.tasks import prepare
from engine.tasks.plan import TaskContext, TaskPlan

log = logging.getLogger(__name__)

Progress = Callable[[str, int, int], None]
ShouldCancel = Callable[[], bool]


def _image_key(images: list[Image.Image]) -> str:
    h = hashlib.sha256()
    for im in images:
        h.update(repr(im.size).encode())
        h.update(np.asarray(im.convert("RGB")).tobytes())
    return h.hexdigest()


class Editor:
    """Runs edits on loaded models. One edit at a time per editor (a lock guards it): the worker
    holds one editor per GPU. `cache_bytes` bounds the inversion cache. `time_travel` False drops
    the time-travel repeats (§9), for the paper's ablation. `batched_backward` takes the two
    guidance gradients in one batched backward call (two calls, as the release, by default).
    `kv_offload` keeps the cached K/V banks in pinned host memory and brings each sampling step's
    to the GPU ahead of its use (engine/kv_offload.py). `compile` runs the sampling passes through
    `torch.compile` in that mode (engine/compiled.py); `channels_last` stores the UNet's weights
    and activations NHWC, the layout cuDNN's fastest convolutions use."""

    def __init__(
        self,
        models: Models,
        cache_bytes: int = 8 << 30,
        image_prompt_cache: int = 16,
        time_travel: bool = True,
        default_resolution: int | None = None,
        batched_backward: bool = False,
        kv_offload: bool = False,
        compile: CompileMode = "off",
        channels_last: bool = False,
        compile_backend: str = "inductor",
    ) -> None:
        self.models = models
        if channels_last:
            models.unet.to(memory_format=torch.channels_last)
        self.compile_mode = compile
        self.batched_backward = batched_backward
        self.kv_offload = kv_offload
        # The working size of a request that names none (None: the model's rule, Models.default_resolution).
        self.default_resolution = default_resolution or models.default_resolution()
        self.time_travel = time_travel
        self.control = AttentionControl()
        install_processors(models.unet, self.control, models.ip_layers)
        self._sampling_unet = compile_unet(models.unet, compile, compile_backend)
        self._timesteps: dict[int, torch.Tensor] = {}
        self.cache = InversionCache(cache_bytes)
        self.alphas = AlphaTable(models.scheduler.alphas_cumprod.to(torch.float64))
        self.train_steps = int(models.scheduler.config.num_train_timesteps)
        self._ip_cache: OrderedDict[str, tuple[torch.Tensor, torch.Tensor]] = OrderedDict()
        self._ip_cache_size = image_prompt_cache
        self._activations: budget.ActivationModel | None = None  # measured on the first edit
        self.costs = CostTable()  # FLOPs per kind of call, measured once per working size (engine/cost.py)
        self._lock = threading.Lock()

    @property
    def device(self) -> torch.device:
        return self.models.device

    def clear_cache(self) -> None:
        """Drop cached inversions and image-prompt tokens (the worker calls this after an OOM)."""
        self.cache.clear()
        self._ip_cache.clear()

    # -- building blocks -------------------------------------------------------------------

    @torch.no_grad()
    def encode_text(self, prompts: list[str]) -> torch.Tensor:
        tok = self.models.tokenizer(prompts, padding="max_length", max_length=77, truncation=True, return_tensors="pt")
        return self.models.text_encoder(tok.input_ids.to(self.device))[0].to(self.models.dtype)

    def image_prompt(self, images: list[Image.Image]) -> tuple[torch.Tensor, torch.Tensor]:
        """Image tokens for the prompt images, concatenated along tokens (§2.3): (1, 64·k, 768)."""
        from engine.image_prompt import encode_image_prompt

        key = _image_key(images)
        if key not in self._ip_cache:
            cond, uncond = encode_image_prompt(self.models, images)
            self._ip_cache[key] = (cond.reshape(1, -1, cond.shape[-1]), uncond.reshape(1, -1, uncond.shape[-1]))
            while len(self._ip_cache) > self._ip_cache_size:
                self._ip_cache.popitem(last=False)
        self._ip_cache.move_to_end(key)
        return self._ip_cache[key]

    def _unet(self, z: torch.Tensor, t: int, context: torch.Tensor, compiled: bool = False) -> torch.Tensor:
        if compiled and self._sampling_unet is not None:  # a tensor timestep: no recompile per step
            if t not in self._timesteps:
                self._timesteps[t] = torch.tensor(t, device=self.device)
            begin_step(self.compile_mode, self.device)
            out = self._sampling_unet(z.to(self.models.dtype), self._timesteps[t], encoder_hidden_states=context)
            return out.sample.float()
        return self.models.unet(z.to(self.models.dtype), t, encoder_hidden_states=context).sample.float()

    # -- the edit --------------------------------------------------------------------------

    def edit(
        self,
        request: EditRequest,
        progress: Progress | None = None,
        should_cancel: ShouldCancel | None = None,
        preview: PreviewCallback | None = None,
        preview_every: int = 5,
        preview_budget: float = previews.BUDGET,
    ) -> EditResult:
        """Run one edit. `progress(stage, step, total)` hears each step, `should_cancel()` is asked
        between steps; `preview(step, total, image)`, when given, gets a small RGB picture of x̂0 at
        every `preview_every`-th sampling step and at the last (a latent → RGB projection,
        engine/previews.py; the output is the same with or without it), skipped while previews
        have taken over `preview_budget` of the sampling time so far (previews.Budget)."""
        with self._lock:
            return self._edit(
                request,
                progress or (lambda s, i, n: None),
                should_cancel or (lambda: False),
                preview if preview_every > 0 else None,
                preview_every,
                preview_budget,
            )

    def _edit(
        self,
        request: EditRequest,
        progress: Progress,
        should_cancel: ShouldCancel,
        preview: PreviewCallback | None = None,
        preview_every: int = 5,
        preview_budget: float = previews.BUDGET,
    ) -> EditResult:
        request.validate()
        if getattr(self.models.unet, "_editor_control", None) is not self.control:
            # Another editor on the same models installed its processors since; take them back.
            install_processors(self.models.unet, self.control, self.models.ip_layers)
        p = request.params
        seed = p.seed if p.seed is not None else secrets.randbelow(2**32)
        resolution = p.max_resolution or self.default_resolution
        params = p.model_copy(update={"seed": seed, "max_resolution": resolution})
        stats = EditStats()
        ev = stats.evaluations
        t_start = clock = time.perf_counter()

        def lap(stage: str) -> None:
            nonlocal clock
            now = time.perf_counter()
            stats.seconds[stage] = now - clock
            clock = now

        def step(stage: str, i: int, total: int) -> None:
            if should_cancel():
                raise Canceled("canceled between steps")
            progress(stage, i, total)

        # 1. Preprocess (§1, §8): working size, masks, task plan.
        progress("preprocess", 0, 1)
        size = working_size(request.image.size, resolution)
        ctx = TaskContext(size=size, input_size=request.image.size, device=self.device)
        plan = prepare(request, ctx)
        stats.working_size = size
        meter = self.costs.meter(size)
        schedule = build_schedule(
            plan.task,
            p.steps,
            guidance=p.guidance_strength != 0,
            train_steps=self.train_steps,
            time_travel=self.time_travel,
        )
        c_t, c_null = self.encode_text([plan.prompt, ""]).chunk(2)
        lap("preprocess")

        # 2. Image prompt (§2): the source (or base + reference), or the caller's own image.
        cond, uncond = c_t, c_null
        if p.ip_scale != 0 and self.models.image_proj is not None:
            step("image_prompt", 0, 1)
            sources = [request.image_prompt] if request.image_prompt is not None else plan.prompt_images
            e_img, e_null = self.image_prompt([im.convert("RGB") for im in sources])
            cond, uncond = torch.cat([c_t, e_img], 1), torch.cat([c_null, e_null], 1)
        lap("image_prompt")

        # 3. Inversion (§3), reused across edits of the same image(s).
        # K/V are recorded only at the steps that inject them (the entry's largest part, §7).
        kv_steps = frozenset(r.i for r in schedule if r.kv)
        key = (self.models.model_id, p.steps, tuple(plan.inversion_prompts), size, _image_key(plan.images), kv_steps)
        inv = self.cache.get(key)
        stats.inversion_cached = inv is not None
        self._make_room(plan, size, schedule, kv_steps, c_t, reused=inv)
        if inv is None:
            inv = self._invert(plan, p.steps, step, kv_steps, meter)
            if self.kv_offload and self.device.type == "cuda":
                inv.bank = to_host(inv.bank)  # the device copies go with the recording
            ev["inversion"] += p.steps
            self.cache.put(key, inv)
        features_before = len(inv.features)
        lap("inversion")

        # 4. Sampling (§11.2).
        n = p.steps
        gen = torch.Generator(device=self.device).manual_seed(seed)
        prefetch = KvPrefetch(inv.bank, self.device, [r.i for r in schedule if r.kv]) if self.kv_offload else None
        composite = self._composite_index(plan, size, inv) if plan.composite_masks is not None else None
        projection = None
        # Sampling's clock starts here; the budget holds the previews' seconds: the fit, the
        # projections and the caller's handling of them, a part of sampling's.
        allowance = previews.Budget(preview_budget)
        if preview is not None:  # fitted on the input's own latent, whether inverted now or cached
            t0 = time.perf_counter()
            projection = LatentProjection.fit(inv.latents[0], plan.images)
            allowance.spend(time.perf_counter() - t0)
            stats.seconds["previews"] = allowance.spent  # the fit's, until sampling ends
        z = plan.init_latent(inv.latents[n])
        context = torch.cat([uncond, cond])
        guide_scale = 1000.0 * p.guidance_strength  # S, applied inside autograd (§5.3)

        def denoise(z: torch.Tensor, row: StepPlan) -> torch.Tensor:
            kv = None
            if row.kv:  # this step's K/V (on the device: prefetched when the bank lives on the host)
                kv = prefetch.step(row.i) if prefetch is not None else step_kv(inv.bank, row.i)
            with self.control.inject(row.i, kv, row.kv, p.ip_scale if row.ip else 0.0, composite):
                with meter.call("sampling", 2) as measuring:  # the metered call runs eagerly
                    eps_u, eps_c = self._unet(torch.cat([z, z]), row.t, context, compiled=not measuring).chunk(2)
            ev["sampling"] += 1
            return eps_u + p.cfg_scale * (eps_c - eps_u)

        def rollback_eps(z: torch.Tensor, row: StepPlan) -> torch.Tensor:
            ev["rollback"] += 1  # conditional context, plain attention, image prompt gated off (§9)
            with meter.call("rollback", 1):
                return self._unet(z, row.t_prev, cond)

        def guidance(z: torch.Tensor, row: StepPlan) -> torch.Tensor:
            ref = on_grid(self._reference_features(inv, row, c_t, n, ev, meter), ctx.grid)
            batched = self.batched_backward
            with torch.enable_grad():
                # contiguous for the batched backward: the cross-image latents come channels-last
                # from the VAE, and torch's vmap has no rule for that layout
                zg = (z.contiguous() if batched else z).detach().requires_grad_(True)
                with meter.call("guidance_forward", 1):
                    native = decoder_features(self.models.unet, zg.to(self.models.dtype), row.t, c_t)
                ev["guidance_forward"] += 1
                # batched: the energies see the feature maps as leaves, so that their cotangents
                # there are partial derivatives, which one backward then takes through the UNet
                leaves = [f.detach().requires_grad_(True) for f in native] if batched else None
                e_edit, e_cont = plan.energy(on_grid(leaves or native, ctx.grid), ref)
                if e_cont is None or plan.guidance_mask is None:
                    (g_edit,) = self._grads([guide_scale * e_edit], leaves, native, zg, ev, meter)
                    return plan.lam * g_edit
                g_edit, g_cont = self._grads(
                    [guide_scale * e_edit, guide_scale * e_cont], leaves, native, zg, ev, meter
                )
            m = plan.guidance_mask
            return plan.lam * (m * g_edit + (1 - m) * g_cont)

        def on_step(i: int, x0: torch.Tensor) -> None:
            step("sampling", i + 1, n)
            if projection is not None and preview is not None and due(i + 1, n, preview_every) and allowance.allows():
                t0 = time.perf_counter()
                preview(i + 1, n, projection(x0))
                allowance.spend(time.perf_counter() - t0)

        z = sample(
            z,
            schedule,
            self.alphas,
            denoise=denoise,
            guidance=guidance,
            rollback_eps=rollback_eps,
            eta_in=plan.eta_in,
            eta_out=plan.eta_out,
            sde_mask=plan.sde_mask,
            generator=gen,
            on_step=on_step,
        )
        if len(inv.features) != features_before:
            self.cache.put(key, inv)  # re-measure: the reference features now live with it
        stats.cache_bytes = inv.nbytes()
        stats.unet_equivalents = meter.unet_equivalents()
        energies = 1 if plan.guidance_mask is None else 2  # face has only the edit energy (§5.3)
        stats.release_unet_equivalents = meter.release_unet_equivalents(
            schedule, len(plan.images), energies, backward_batch=energies if self.batched_backward else 1
        )
        lap("sampling")
        if projection is not None:
            stats.seconds["previews"] = allowance.spent
        if allowance.skipped:
            log.info(
                "%d previews skipped: previews had taken %.0f%% of sampling", allowance.skipped, 100 * preview_budget
            )

        # 5. Decode (§10) and back to the input size (docs/deviations.md).
        if not torch.isfinite(z).all():  # decoded, NaN comes back as a black image
            raise NonFiniteLatent(
                "the sampled latent has NaN or infinite values, so no image was decoded; "
                "a lower guidance_strength or another seed may avoid it"
            )
        step("decode", 0, 1)
        image = to_image(vae_decode(self.models.vae, z))
        image = resize_image(image, request.image.size)
        progress("decode", 1, 1)
        lap("decode")
        stats.seconds["total"] = time.perf_counter() - t_start
        return EditResult(image=image, seed=seed, params=params, stats=stats)

    @torch.no_grad()
    def reconstruct(
        self, image: Image.Image, prompt: str, steps: int = 50, max_resolution: int | None = None
    ) -> Image.Image:
        """DDIM inversion then plain deterministic DDIM back with the same prompt: no edit, no CFG,
        no K/V injection, no image prompt. What the quality benchmark's inversion figure measures."""
        with self._lock:
            if getattr(self.models.unet, "_editor_control", None) is not self.control:
                install_processors(self.models.unet, self.control, self.models.ip_layers)
            size = working_size(image.size, max_resolution or self.default_resolution)
            x = to_tensor(resize_image(image, size), self.device, self.models.dtype)
            z = vae_encode(self.models.vae, x).float()
            context = self.encode_text([prompt])
            timesteps = ddim_timesteps(steps, self.train_steps)
            ratio = self.train_steps // steps
            inv = invert(self.models.unet, self.control, z, context, timesteps, ratio, self.alphas)
            z = inv.latents[steps]
            for t in timesteps:
                eps = self._unet(z, t, context)
                z = ddim_step(z, eps, eps, t, t - ratio, self.alphas)
            return resize_image(to_image(vae_decode(self.models.vae, z)), image.size)

    # -- helpers ---------------------------------------------------------------------------

    def _invert(
        self,
        plan: TaskPlan,
        steps: int,
        step: Callable[[str, int, int], None],
        kv_steps: frozenset[int],
        meter: CostMeter,
    ) -> Inversion:
        dtype = self.models.dtype
        x = torch.cat([to_tensor(im, self.device, dtype) for im in plan.images])
        z0 = vae_encode(self.models.vae, x).float()
        context = self.encode_text(plan.inversion_prompts)
        timesteps = ddim_timesteps(steps, self.train_steps)
        return invert(
            self.models.unet,
            self.control,
            z0,
            context,
            timesteps,
            self.train_steps // steps,
            self.alphas,
            on_step=lambda k: step("inversion", k + 1, steps),
            record_steps=kv_steps,
            around_call=lambda: meter.call("inversion", len(plan.images)),
        )

    def _reference_features(
        self,
        inv: Inversion,
        row: StepPlan,
        c_t: torch.Tensor,
        n: int,
        ev: dict[str, int],
        meter: CostMeter,
    ) -> list[torch.Tensor]:
        """F_ref from Z_inv[N−i] at t_i with the base prompt (§5.1), computed once per step and
        kept with the cached inversion at the UNet's own resolution (resized to the grid at use)
        (a batch of two for the cross-image tasks counts once)."""
        if row.i not in inv.features:
            z_ref = inv.latents[n - row.i]
            with torch.no_grad(), meter.call("reference_features", len(z_ref)):
                inv.features[row.i] = [
                    f.detach()
                    for f in decoder_features(
                        self.models.unet, z_ref.to(self.models.dtype), row.t, c_t.expand(len(z_ref), -1, -1)
                    )
                ]
            ev["guidance_forward"] += 1
        return inv.features[row.i]

    def _grads(
        self,
        energies: list[torch.Tensor],
        leaves: list[torch.Tensor] | None,
        features: list[torch.Tensor],
        z: torch.Tensor,
        ev: dict[str, int],
        meter: CostMeter,
    ) -> list[torch.Tensor]:
        """∇_z of each energy (§5.3). Without `leaves`: one backward call per energy from the
        energy to z, as the release does. With `leaves` (the feature maps the energies were
        computed from, detached): each energy's cotangents at the leaves come from its own small
        graph, and one batched backward (`is_grads_batched`) takes both through the UNet from
        `features` to z: one graph traversal instead of two, equal to the two calls in fp32
        (tested). Where torch's vmap lacks a batching rule for an op of the graph, the editor
        says so once and takes one backward per energy from then on. A constant energy (an
        empty region) has a zero gradient and no backward."""
        grads = [torch.zeros_like(z) for _ in energies]
        live = [k for k, e in enumerate(energies) if e.requires_grad]
        ev["guidance_backward"] += len(live)  # one per energy gradient, batched or not
        if leaves is None:
            for n, k in enumerate(live):
                replay = partial(torch.autograd.grad, energies[k], z, retain_graph=True)
                with meter.call("guidance_backward", 1, replay):
                    (g,) = torch.autograd.grad(energies[k], z, retain_graph=n < len(live) - 1)
                grads[k] = g.float()
            return grads
        cotangents = []
        for k in live:
            per_leaf = torch.autograd.grad(energies[k], leaves, allow_unused=True)
            cotangents.append([torch.zeros_like(f) if c is None else c for f, c in zip(leaves, per_leaf)])
        if len(live) > 1:
            stacked = [torch.stack(level) for level in zip(*cotangents)]

            def batched() -> tuple[torch.Tensor, ...]:
                # retain: a refused batched call must leave the graph to the per-energy calls;
                # it is freed with the features when the guidance returns
                return torch.autograd.grad(features, z, grad_outputs=stacked, is_grads_batched=True, retain_graph=True)

            try:
                with meter.call("guidance_backward", len(live), batched):
                    (g,) = batched()
            except RuntimeError as exc:
                log.warning("batched guidance backward unavailable (%s); one backward per energy from now on", exc)
                self.batched_backward = False
            else:
                for row, k in enumerate(live):
                    grads[k] = g[row].float()
                return grads
        for n, (k, cot) in enumerate(zip(live, cotangents)):
            replay = partial(torch.autograd.grad, features, z, grad_outputs=cot, retain_graph=True)
            with meter.call("guidance_backward", 1, replay):
                (g,) = torch.autograd.grad(features, z, grad_outputs=cot, retain_graph=n < len(live) - 1)
            grads[k] = g.float()
        return grads

    def _make_room(
        self,
        plan: TaskPlan,
        size: tuple[int, int],
        schedule: list[StepPlan],
        kv_steps: frozenset[int],
        c_t: torch.Tensor,
        reused: Inversion | None,
    ) -> None:
        """Refuse, before any work, a working size whose estimated peak (engine/budget.py) the
        device cannot hold even with the other cache entries evicted; else evict what it takes."""
        free = budget.free_bytes(self.device)
        if free is None:
            return
        if self._activations is None:
            self._activations = budget.ActivationModel(self.models.unet, c_t)
        images = len(plan.images)
        need = self._activations(size) + budget.grid_feature_bytes(self.models.unet, size, images, self.models.dtype)
        if reused is None:
            guided = sum(1 for r in schedule if r.guide)
            on_device = 0 if self.kv_offload and self.device.type == "cuda" else len(kv_steps)
            need += budget.entry_bytes(
                self.models.unet, size, images, len(schedule), on_device, guided, self.models.dtype
            )
        need = int(need * budget.MARGIN)
        evictable = self.cache.nbytes() - (reused.nbytes() if reused is not None else 0)
        if need > free + evictable:
            w, h = size
            fits = int(max(w, h) * ((free + evictable) / need) ** 0.5) // 64 * 64
            hint = f"max_resolution {fits} or less should fit" if fits >= 64 else "no working size fits"
            raise InvalidInput(
                "max_resolution",
                f"a {w}x{h} {plan.task} edit needs about {need / 1e9:.1f} GB on {self.device}, which has "
                f"{(free + evictable) / 1e9:.1f} GB free; {hint}",
            )
        if need > free:
            self.cache.shrink(self.cache.nbytes() - (need - free), keep=reused)

    def _composite_index(self, plan: TaskPlan, size: tuple[int, int], inv: Inversion) -> CompositeIndex:
        base_mask, ref_mask = plan.composite_masks  # type: ignore[misc]
        tokens = {next(iter(steps.values()))[0].shape[1] for steps in inv.bank.values()}
        return composite_indices(base_mask, ref_mask, size, tokens)

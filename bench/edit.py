"""Engine benchmark: seconds per stage, evaluations by kind and peak memory of each task's edits.

    python bench/edit.py --config demo-cpu            [--model DIR] [--size 128] [--steps 50]
    python bench/edit.py --config sd15-random-cpu     [--size 128] [--steps 4] [--no-image-prompt]
    python bench/edit.py --config sd15-random-cuda    [--size 512 768] [--steps 50] [--dtype bf16]
    ... [--tasks move drag ...] [--device cpu] [--threads N] [--json PATH]
    ... [--batched-backward] [--kv-offload] [--compile MODE] [--channels-last] [--release-loop]

Configurations (every flag overrides the configuration's default):
  demo-cpu          the demo model (`load_models("demo")`, or --model DIR) on the CPU, fp32.
  sd15-random-cpu   the full SD1.5 architecture (engine/configs/sd15), the ViT-H/14 image encoder
                    and the image-prompt Resampler/ip layers at SD1.5's widths, random weights,
                    built in-process (no download), fp32 on the CPU, small size and few steps.
  sd15-random-cuda  the same on CUDA in bf16 at 512² and 768², 50 steps, against the issue's
                    targets (H200: first 512² edit ≤ 1.0 s, repeat ≤ 0.6 s, 768² peak < 8 GB).
                    `--device cpu --size 64 --steps 4` runs the same code path on a CPU.

For each size and task: a FIRST edit (inversion and image-prompt caches cleared) and a REPEAT of
the same request (inversion and image tokens come from the caches), after a 4-step warm-up edit
of another image (on CUDA at each size, on the CPU at 64²). Stage seconds are the
engine's own (`result.stats.seconds`); `wall` is measured here around `editor.edit`. On CUDA the
bench synchronizes before and after each edit and at the end of each stage's progress, so the
stage split is close but an asynchronous tail can land in the next stage. Peak memory: on CUDA
`torch.cuda.max_memory_allocated` (reset before each edit); on the CPU the process's peak RSS
(VmHWM, reset before each edit via /proc/self/clear_refs; where that is unavailable, the
process-lifetime ru_maxrss, marked "lifetime"). Peaks include the resident weights.
Cost: `unet_eq` is the edit's cost in full UNet forwards at batch 1 (FLOPs, engine/cost.py), `release`
the authors' loop for the same schedule at the same per-call costs, `cache` the bytes the edit's
inversion cache entry holds. `--release-loop` also times a plain implementation of the release's
loop on the same model and request (reference features recomputed at every guided pass, every
rollback run, the discarded one included, two backward calls, nothing reused across edits) and
prints the engine's first and repeat wall time as a fraction of it.
A benchmark, not a test: it prints figures and asserts nothing.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import os
import platform
import resource
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # random or demo weights only: never reach the hub
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import torch  # noqa: E402
from pydantic import ValidationError  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import engine  # noqa: E402
from diffeditor.tasks import TASKS, AppearanceParams, DragParams, LandmarkParams, MoveParams, PasteParams  # noqa: E402
from engine.cli import add_editor_options, editor_options  # noqa: E402
from engine.errors import EngineError  # noqa: E402
from tests.engine.images import box_mask, scene  # noqa: E402

GB = 1e9
MB = 1e6
REFERENCE = 128  # request geometry is laid out on a 128² image and scaled to the benchmark size

# CLIP ViT-H/14 vision tower (the image encoder the authors' ip_sd15_64 checkpoint goes with).
VIT_H14 = {
    "hidden_size": 1280,
    "intermediate_size": 5120,
    "num_hidden_layers": 32,
    "num_attention_heads": 16,
    "patch_size": 14,
    "image_size": 224,
    "projection_dim": 1024,
    "hidden_act": "gelu",
    "layer_norm_eps": 1e-5,
}


@dataclass(frozen=True)
class Config:
    model: str  # "demo", "sd15-random" or a load_models spec
    device: str
    dtype: str
    sizes: tuple[int, ...]
    steps: int
    targets: bool  # print the H200 targets beside the figures


CONFIGS = {
    "demo-cpu": Config("demo", "cpu", "fp32", (128,), 50, targets=False),
    "sd15-random-cpu": Config("sd15-random", "cpu", "fp32", (128,), 4, targets=False),
    "sd15-random-cuda": Config("sd15-random", "cuda", "bf16", (512, 768), 50, targets=True),
}
TARGET_FIRST_512_S = 1.0
TARGET_REPEAT_512_S = 0.6
TARGET_PEAK_768_BYTES = 8 * GB


# -- models -------------------------------------------------------------------------------------


def build_sd15_random(device: torch.device, dtype: torch.dtype, image_prompt: bool, seed: int = 0) -> engine.Models:
    """SD1.5 (UNet, VAE, CLIP text encoder at SD1.5's configs), ViT-H/14 and the image-prompt parts
    at SD1.5's widths, with random weights, in memory. The image-prompt checkpoint is written in the
    authors' layout to a temp file and read by the engine's own loader (its key/shape checks run)."""
    from diffusers import AutoencoderKL, DDIMScheduler, UNet2DConditionModel
    from diffusers.models.attention_processor import AttnProcessor2_0
    from transformers import (
        CLIPTextConfig,
        CLIPTextModel,
        CLIPTokenizer,
        CLIPVisionConfig,
        CLIPVisionModelWithProjection,
    )

    from engine import tokenizer as offline_tokenizer
    from engine.image_prompt import image_prompt_shapes, ip_adapter_shapes, load_image_prompt
    from engine.random_model import _random_state
    from engine.sd15 import SD15_CONFIG_DIR

    torch.manual_seed(seed)
    default_dtype = torch.get_default_dtype()
    # Initialise in place, on the device and in the dtype: no fp32 CPU copy of 1.7 B parameters on
    # CUDA, and no cast afterwards (diffusers warns on a dtype cast through to()).
    torch.set_default_dtype(dtype)
    try:
        with torch.device(device):
            unet = UNet2DConditionModel.from_config(UNet2DConditionModel.load_config(SD15_CONFIG_DIR / "unet"))
            vae = AutoencoderKL.from_config(AutoencoderKL.load_config(SD15_CONFIG_DIR / "vae"))
            text_encoder = CLIPTextModel(CLIPTextConfig.from_pretrained(SD15_CONFIG_DIR / "text_encoder"))
            vision = CLIPVisionModelWithProjection(CLIPVisionConfig(**VIT_H14)) if image_prompt else None
    finally:
        torch.set_default_dtype(default_dtype)
    for module in (unet, vae, text_encoder, vision):
        if module is not None:
            if any(p.dtype != dtype for p in module.parameters()):  # a library that ignored the default
                module.to(dtype=dtype)
            module.eval().requires_grad_(False)
    unet.set_attn_processor(AttnProcessor2_0())
    vae.set_attn_processor(AttnProcessor2_0())
    scheduler = DDIMScheduler.from_config(DDIMScheduler.load_config(SD15_CONFIG_DIR / "scheduler"))

    with tempfile.TemporaryDirectory(prefix="bench-sd15-") as tmp:
        # Random weights: the offline tokenizer's ids (all < SD1.5's vocabulary) are as good as CLIP's.
        tokenizer = CLIPTokenizer.from_pretrained(offline_tokenizer.write_tokenizer(Path(tmp) / "tokenizer"))
        image_proj, ip_layers = None, None
        if image_prompt:
            cross = unet.config.cross_attention_dim
            checkpoint = {
                "image_proj": _random_state(
                    seed, "image_proj", image_prompt_shapes(VIT_H14["hidden_size"], cross, cross)
                ),
                "ip_adapter": _random_state(seed, "ip_adapter", ip_adapter_shapes(unet)),
            }
            path = Path(tmp) / "ip_sd15_64.bin"
            torch.save(checkpoint, path)
            del checkpoint
            image_proj, ip_layers = load_image_prompt(unet, path, device, dtype, clip_hidden=VIT_H14["hidden_size"])

    return engine.Models(
        unet=unet,
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        scheduler=scheduler,
        image_encoder=vision,
        image_proj=image_proj,
        ip_layers=ip_layers,
        device=device,
        dtype=dtype,
        model_id=f"sd15-random-seed{seed}",
        is_demo=True,  # random weights: outputs prove the machinery, never quality
    )


def load(spec: str, device: torch.device, dtype: torch.dtype, image_prompt: bool) -> engine.Models:
    if spec == "sd15-random":
        return build_sd15_random(device, dtype, image_prompt)
    models = engine.load_models(spec, device=device, dtype=dtype, require_image_prompt=image_prompt)
    if not image_prompt:
        models = dataclasses.replace(models, image_encoder=None, image_proj=None, ip_layers=None)
    return models


def parameter_count(models: engine.Models) -> int:
    modules = [models.unet, models.vae, models.text_encoder, models.image_encoder, models.image_proj]
    modules += [layer for pair in (models.ip_layers or {}).values() for layer in pair]
    return sum(p.numel() for m in modules if m is not None for p in m.parameters())


# -- requests -----------------------------------------------------------------------------------


def make_requests(size: int, steps: int) -> dict[str, object]:
    """One request per task on a size² scene (so the working size is size²), geometry scaled from 128²."""

    def s(*values: float) -> list[float]:
        return [v * size / REFERENCE for v in values]

    def box(*values: float) -> tuple[int, int, int, int]:
        x0, y0, x1, y1 = (round(v) for v in s(*values))
        return x0, y0, x1, y1

    common = {"seed": 7, "steps": steps, "max_resolution": size}
    obj, ref_obj = box(32, 32, 72, 80), box(48, 40, 96, 96)
    img, mask = scene(size, size, obj), box_mask(size, size, obj)
    ref, ref_mask = scene(size, size, ref_obj, seed=1), box_mask(size, size, ref_obj)
    return {
        "move": engine.MoveRequest(img, mask, MoveParams(offset=s(24, 8), **common)),
        "drag": engine.DragRequest(img, mask, DragParams(points=[s(40, 40, 56, 48), s(64, 64, 68, 52)], **common)),
        "landmark": engine.LandmarkRequest(
            img, LandmarkParams(points=[s(40, 40, 44, 44), s(64, 64, 60, 60), s(48, 48, 50, 54)], **common)
        ),
        "appearance": engine.AppearanceRequest(
            img, mask, ref, ref_mask, AppearanceParams(prompt="a box", reference_prompt="a red box", **common)
        ),
        "paste": engine.PasteRequest(img, ref, ref_mask, PasteParams(offset=s(-16, -8), scale=0.8, **common)),
    }


def warmup_request(size: int) -> engine.MoveRequest:
    """A short guided edit (4 steps) on another image, so first-call costs stay out of the figures."""
    obj = (size // 4, size // 4, size * 5 // 8, size * 5 // 8)
    return engine.MoveRequest(
        scene(size, size, obj, seed=99),
        box_mask(size, size, obj),
        MoveParams(offset=[size / 8, size / 16], seed=0, steps=4, max_resolution=size),
    )


# with --compile, enough steps that each task's warm-up edit reaches every injection variant (K/V
# concatenation from step 5 in 50, the image-prompt window 10–19; engine/schedule.py scales them)
WARMUP_STEPS_COMPILED = 20


def warmup_sizes(device: torch.device, sizes: tuple[int, ...], compile: str = "off") -> tuple[int, ...]:
    """On CUDA, or compiled, each benchmark size once (the caching allocator grows, kernels are
    picked or compiled per shape); on the CPU one 64² edit is enough (lazy imports, first allocations)."""
    return sizes if device.type == "cuda" or compile != "off" else (64,)


# -- memory and timing --------------------------------------------------------------------------


class PeakMemory:
    """Peak GPU memory allocated on CUDA; peak RSS on the CPU (resettable through clear_refs on Linux)."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.kind = "gpu_allocated" if device.type == "cuda" else "rss"
        if device.type != "cuda" and not self._reset_rss():
            self.kind = "rss_lifetime"

    @staticmethod
    def _reset_rss() -> bool:
        try:
            Path("/proc/self/clear_refs").write_text("5")  # 5: reset the peak RSS to the current RSS
            return Path("/proc/self/status").is_file()
        except OSError:
            return False

    def reset(self) -> None:
        if self.kind == "gpu_allocated":
            torch.cuda.reset_peak_memory_stats(self.device)
        elif self.kind == "rss":
            self._reset_rss()

    def peak_bytes(self) -> int:
        if self.kind == "gpu_allocated":
            return int(torch.cuda.max_memory_allocated(self.device))
        if self.kind == "rss":
            for line in Path("/proc/self/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
        scale = 1 if sys.platform == "darwin" else 1024  # ru_maxrss: bytes on macOS, KiB on Linux
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@dataclass
class Run:
    task: str
    run: str  # "first" or "repeat"
    size: int
    steps: int
    seconds: dict[str, float]
    wall_seconds: float
    evaluations: dict[str, int]
    inversion_cached: bool
    peak_memory_bytes: int
    peak_memory_kind: str
    unet_equivalents: float | None = None
    release_unet_equivalents: float | None = None
    cache_bytes: int = 0
    targets: dict[str, dict[str, Any]] = field(default_factory=dict)


def timed_edit(editor: engine.Editor, request: object, memory: PeakMemory) -> tuple[engine.EditResult, float, int]:
    device = editor.device
    last = {"stage": ""}

    def progress(stage: str, i: int, total: int) -> None:
        # Sync where a stage's work ends so that the engine's laps see finished GPU work.
        if device.type == "cuda" and (stage != last["stage"] or i == total):
            torch.cuda.synchronize(device)
        last["stage"] = stage

    synchronize(device)
    memory.reset()
    start = time.perf_counter()
    result = editor.edit(request, progress=progress)
    synchronize(device)
    wall = time.perf_counter() - start
    return result, wall, memory.peak_bytes()


def check_targets(run: Run) -> None:
    if run.size == 512:
        limit = TARGET_FIRST_512_S if run.run == "first" else TARGET_REPEAT_512_S
        run.targets["seconds"] = {"limit": limit, "met": run.wall_seconds <= limit}
    if run.size == 768 and run.peak_memory_kind == "gpu_allocated":
        run.targets["peak_memory_bytes"] = {
            "limit": TARGET_PEAK_768_BYTES,
            "met": run.peak_memory_bytes < TARGET_PEAK_768_BYTES,
        }


# -- the release's loop, plainly ----------------------------------------------------------------


def release_sample(z: torch.Tensor, schedule: list, alphas: Any, **kw: Any) -> torch.Tensor:
    """engine.sampler.sample as the release runs it: the rollback after the last time-travel pass
    is computed too (and discarded, §9)."""
    from engine.sampler import ddim_invert_step, ddim_step

    for row in schedule:
        z_t = z
        for p in range(row.passes):
            eps = kw["denoise"](z_t, row)
            eps_guided = eps + kw["guidance"](z_t, row) if row.guide else eps
            eta = (kw["eta_in"], kw["eta_out"]) if row.sde else (0.0, 0.0)
            z = ddim_step(z_t, eps, eps_guided, row.t, row.t_prev, alphas, *eta, kw["sde_mask"], kw["generator"])
            if row.passes > 1:
                rolled = ddim_invert_step(z, kw["rollback_eps"](z, row), row.t_prev, row.t, alphas)
                if p < row.passes - 1:
                    z_t = rolled
        kw.get("on_step", lambda i: None)(row.i)
    return z


class ReleaseLoopEditor(engine.Editor):
    """The release's loop on the engine's parts: reference features recomputed at every guided
    pass (§5.1), two backward calls, every rollback run, every edit inverted afresh (no cache)."""

    def _reference_features(self, inv: Any, row: Any, *args: Any) -> list[torch.Tensor]:
        levels = super()._reference_features(inv, row, *args)
        del inv.features[row.i]  # never kept: the next pass computes them again
        return levels


def release_loop_seconds(models: engine.Models, request: object, costs: Any) -> float:
    import engine.editor as editor_module

    editor = ReleaseLoopEditor(models, batched_backward=False)
    editor.costs = costs  # FLOPs already measured by the engine's edits: no counting overhead here
    original = editor_module.sample
    editor_module.sample = release_sample
    try:
        synchronize(editor.device)
        start = time.perf_counter()
        editor.edit(request)
        synchronize(editor.device)
        return time.perf_counter() - start
    finally:
        editor_module.sample = original


# -- output -------------------------------------------------------------------------------------


def machine_info(device: torch.device) -> dict[str, Any]:
    import diffusers
    import transformers

    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
    else:
        name = platform.processor() or platform.machine()
        cpuinfo = Path("/proc/cpuinfo")
        if cpuinfo.is_file():
            models = [
                ln.split(":", 1)[1].strip() for ln in cpuinfo.read_text().splitlines() if ln.startswith("model name")
            ]
            name = models[0] if models else name
    return {
        "device": str(device),
        "device_name": name,
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "diffusers": diffusers.__version__,
        "transformers": transformers.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def _target_text(run: Run) -> str:
    parts = []
    for key, target in run.targets.items():
        mark = "met" if target["met"] else "MISSED"
        if key == "seconds":
            parts.append(f"wall ≤ {target['limit']:.1f} s {mark}")
        else:
            parts.append(f"peak < {target['limit'] / GB:.0f} GB {mark}")
    return "; ".join(parts)


def table(runs: list[Run], with_targets: bool) -> str:
    head = ["task", "size", "run", "preprocess", "image_prompt", "inversion", "sampling", "decode", "total", "wall"]
    head += ["evals inv/samp/g_fwd/g_bwd/rollback", "inv cached", "unet_eq / release", "cache", "peak memory"]
    if with_targets:
        head.append("target (H200, bf16)")
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    for r in runs:
        ev = r.evaluations
        stages = ("preprocess", "image_prompt", "inversion", "sampling", "decode", "total")
        cells = [r.task, f"{r.size}²", r.run, *(f"{r.seconds.get(s, 0.0):.3f}" for s in stages)]
        cells.append(f"{r.wall_seconds:.3f}")
        cells.append(
            "/".join(
                str(ev.get(k, 0))
                for k in ("inversion", "sampling", "guidance_forward", "guidance_backward", "rollback")
            )
        )
        cells.append("yes" if r.inversion_cached else "no")
        eq = r.unet_equivalents
        cells.append("–" if eq is None else f"{eq:.1f} / {r.release_unet_equivalents:.1f}")
        cells.append(f"{r.cache_bytes / MB:.1f} MB")
        unit = (
            f"{r.peak_memory_bytes / GB:.2f} GB"
            if r.peak_memory_kind == "gpu_allocated"
            else f"{r.peak_memory_bytes / MB:.0f} MB"
        )
        cells.append(unit + (" (lifetime)" if r.peak_memory_kind == "rss_lifetime" else ""))
        if with_targets:
            cells.append(_target_text(r))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


# -- main ---------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--config", choices=sorted(CONFIGS), default="demo-cpu")
    parser.add_argument("--model", help="a load_models spec (folder, file, hub id) instead of the config's model")
    parser.add_argument("--device", help="override the config's device (cpu, cuda, cuda:N)")
    parser.add_argument("--dtype", choices=("fp32", "fp16", "bf16"), help="override the config's dtype")
    parser.add_argument("--size", type=int, nargs="+", help="working sizes (square), e.g. --size 512 768")
    parser.add_argument("--steps", type=int, help="DDIM steps (4 to 200)")
    parser.add_argument("--tasks", nargs="+", choices=TASKS, default=list(TASKS))
    parser.add_argument("--no-image-prompt", action="store_true", help="skip the CLIP image encoder and image prompt")
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's own choice)")
    parser.add_argument("--no-warmup", action="store_true", help="skip the warm-up edits (4 steps, another image)")
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write the results as JSON")
    add_editor_options(parser)  # --batched-backward, --kv-offload, --compile, --channels-last
    parser.add_argument(
        "--release-loop", action="store_true", help="also time a plain implementation of the release's loop"
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    config = CONFIGS[args.config]
    if args.threads:
        torch.set_num_threads(args.threads)  # on a shared CPU, fewer threads than cores avoids OpenMP stalls
    device = torch.device(args.device or config.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        print(
            f"bench/edit.py: CUDA is not available, and --config {args.config} runs on {device}. "
            "Run it on a machine with a CUDA GPU, or exercise the same code path on the CPU with "
            "`--device cpu --size 64 --steps 4`.",
            file=sys.stderr,
        )
        return 2
    spec = args.model or config.model
    dtype_name = args.dtype or config.dtype
    if device.type != "cuda" and dtype_name != "fp32" and spec != "sd15-random":
        # load_models keeps half precision CUDA-only; the in-process build honours it anywhere, so
        # `--config sd15-random-cuda --device cpu` runs the bf16 path the GPU run takes.
        print(f"note: {dtype_name} is CUDA-only in load_models; using fp32 on {device}", file=sys.stderr)
        dtype_name = "fp32"
    dtype = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}[dtype_name]
    sizes = tuple(args.size or config.sizes)
    steps = args.steps or config.steps
    image_prompt = not args.no_image_prompt

    try:
        start = time.perf_counter()
        models = load(spec, device, dtype, image_prompt)
        synchronize(device)
        load_seconds = time.perf_counter() - start
        editor = engine.Editor(models, **editor_options(args))
        memory = PeakMemory(device)
        for size in () if args.no_warmup else warmup_sizes(device, sizes, args.compile):
            editor.edit(warmup_request(size))
            if args.compile != "off":  # every task's graphs at every size: compile time is not edit time
                for task, request in make_requests(size, WARMUP_STEPS_COMPILED).items():
                    if task in args.tasks:
                        editor.edit(request)
        editor.clear_cache()
        runs: list[Run] = []
        release_runs: list[tuple[str, int, float, float, float]] = []
        for size in sizes:
            requests = make_requests(size, steps)
            for task in args.tasks:
                editor.clear_cache()  # the tasks share images: each task's first edit starts cold
                for label in ("first", "repeat"):
                    result, wall, peak = timed_edit(editor, requests[task], memory)
                    stats = result.stats
                    run = Run(
                        task=task,
                        run=label,
                        size=size,
                        steps=steps,
                        seconds=dict(stats.seconds),
                        wall_seconds=wall,
                        evaluations=dict(stats.evaluations),
                        inversion_cached=stats.inversion_cached,
                        peak_memory_bytes=peak,
                        peak_memory_kind=memory.kind,
                        unet_equivalents=stats.unet_equivalents,
                        release_unet_equivalents=stats.release_unet_equivalents,
                        cache_bytes=stats.cache_bytes,
                    )
                    if config.targets and device.type == "cuda":  # the targets are H200 figures
                        check_targets(run)
                    runs.append(run)
                    print(f"  {task} {size}² {label}: {wall:.2f} s", file=sys.stderr, flush=True)
                if args.release_loop:
                    wall = release_loop_seconds(models, requests[task], editor.costs)
                    release_runs.append((task, size, wall, runs[-2].wall_seconds, runs[-1].wall_seconds))
                    print(f"  {task} {size}² release loop: {wall:.2f} s", file=sys.stderr, flush=True)
    except (EngineError, ValidationError) as exc:  # a bad model spec, --steps or --size: one message
        print(f"bench/edit.py: {exc}", file=sys.stderr)
        return 1

    info = machine_info(device)
    setup = {
        "config": args.config,
        "model": spec,
        "dtype": dtype_name,
        "steps": steps,
        "sizes": list(sizes),
        "image_prompt": models.image_proj is not None,
        "parameters": parameter_count(models),
        "load_seconds": round(load_seconds, 2),
        "warmup_sizes": [] if args.no_warmup else list(warmup_sizes(device, sizes, args.compile)),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
    print(f"## bench/edit.py --config {args.config}\n")
    print(
        f"- machine: {info['device_name']} ({info['device']}), {info['cpu_count']} CPUs, "
        f"{info['torch_threads']} torch threads; torch {info['torch']} (CUDA {info['cuda']}), "
        f"diffusers {info['diffusers']}, transformers {info['transformers']}"
    )
    print(
        f"- model: {spec}, {setup['parameters'] / 1e6:.0f} M parameters, {dtype_name}, image prompt "
        f"{'on' if setup['image_prompt'] else 'off'}, built/loaded in {load_seconds:.1f} s"
    )
    print(
        f"- {steps} steps, default schedule and task parameters, seed 7; seconds per stage from the engine, "
        f"wall around the edit; peak memory: {memory.kind}\n"
    )
    print(table(runs, config.targets and device.type == "cuda"))
    if release_runs:
        print("\n| task | size | release loop wall | engine first / release | engine repeat / release |")
        print("|---|---|---|---|---|")
        for task, size, wall, first, repeat in release_runs:
            print(f"| {task} | {size}² | {wall:.3f} | {first / wall:.2f} | {repeat / wall:.2f} |")
    if args.json:
        payload = {
            "machine": info,
            "setup": setup,
            "runs": [dataclasses.asdict(r) for r in runs],
            "release_loop": [
                {"task": t, "size": sz, "wall_seconds": w, "first_fraction": f / w, "repeat_fraction": r / w}
                for t, sz, w, f, r in release_runs
            ],
        }
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(payload, indent=2) + "\n")
        print(f"\nwrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""One guided sampling step under torch.profiler, and the cache's byte accounting against the
allocator, on the full SD1.5 architecture with random weights (bench/edit.py's build).

    python bench/profile_step.py [--device cuda] [--dtype bf16] [--size 512] [--out DIR]

Writes `profile.txt` (the top-20 operators of one guided step by device time, or CPU time on a
CPU) and `cache.json` (what `torch.cuda.memory_allocated` grew by while the edit's inversion
stayed cached, beside `stats.cache_bytes`) into DIR, and prints both. On a CPU it is a dry run
of the same code at a small size (`--device cpu --size 64`). A benchmark: it asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.edit import build_sd15_random, make_requests, synchronize  # noqa: E402
from engine import Editor  # noqa: E402

GUIDED_STEP = 1  # sampling step 1: guided (§4), K/V injected for move, no time travel


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--dtype", choices=("fp32", "fp16", "bf16"), default="bf16")
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--out", type=Path, default=Path("bench-profile"))
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    dtype = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}[args.dtype]
    args.out.mkdir(parents=True, exist_ok=True)

    models = build_sd15_random(device, dtype, image_prompt=True)
    editor = Editor(models)
    request = make_requests(args.size, args.steps)["move"]
    editor.edit(request)  # warm-up: kernels chosen, FLOPs measured, allocator grown
    editor.clear_cache()

    # Cache accounting: the allocator's growth while the entry stays cached vs. the entry's bytes.
    synchronize(device)
    before = torch.cuda.memory_allocated(device) if device.type == "cuda" else None
    result = editor.edit(request)
    synchronize(device)
    after = torch.cuda.memory_allocated(device) if device.type == "cuda" else None
    cache = {
        "cache_bytes": result.stats.cache_bytes,
        "allocated_growth_bytes": None if before is None else after - before,
        "unet_equivalents": result.stats.unet_equivalents,
        "release_unet_equivalents": result.stats.release_unet_equivalents,
    }
    (args.out / "cache.json").write_text(json.dumps(cache, indent=2) + "\n")
    print(json.dumps(cache, indent=2))

    # One guided step: the profiler runs from the end of step GUIDED_STEP-1 to the end of GUIDED_STEP
    # of a repeat edit (inversion cached, as a service's repeat edit).
    activities = [torch.profiler.ProfilerActivity.CPU]
    if device.type == "cuda":
        activities.append(torch.profiler.ProfilerActivity.CUDA)
    prof = torch.profiler.profile(activities=activities, record_shapes=False)

    def progress(stage: str, i: int, total: int) -> None:
        if stage != "sampling":
            return
        if i == GUIDED_STEP:  # step GUIDED_STEP-1 just ended
            synchronize(device)
            prof.start()
        elif i == GUIDED_STEP + 1:
            synchronize(device)
            prof.stop()

    editor.edit(request, progress=progress)
    sort = "self_cuda_time_total" if device.type == "cuda" else "self_cpu_time_total"
    table = prof.key_averages().table(sort_by=sort, row_limit=20)
    title = f"one guided step (sampling step {GUIDED_STEP}), move, {args.size}², {args.dtype}, {device}\n"
    (args.out / "profile.txt").write_text(title + table + "\n")
    print(title + table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

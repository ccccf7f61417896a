"""The sampling UNet under `torch.compile` (issue 13), behind the `compile` setting, off by default
until a GPU measurement shows a gain (docs/benchmarks.md).

Only the sampling pass is compiled (§11.2: the CFG batch of two, K/V injected), the call made at
every pass with the same shapes at a working size. The guidance estimator stops the UNet by raising
from a forward hook (engine/features.py) and takes gradients through it, and rollbacks are few:
both stay eager, on the same weights (a compiled module wraps the module; nothing is copied).

What keeps recompiles bounded: the attention processors read one call's K/V view, never a step
index (engine/attention.py), and the timestep goes in as a 0-d tensor rather than a Python int, so
dynamo has nothing that changes per step to guard on. One graph per working size and injection
variant remains (K/V replace / concatenate / composite, the image-prompt branch on or off), a few per
task; `cache_size_limit` is raised so that a worker serving every task at several sizes keeps them.

Modes are torch.compile's: "default" (inductor kernels), "reduce-overhead" (also CUDA graphs, which
shapes fixed per working size allow; inputs are copied into the graph's buffers, and the sampler
reads each output before the next replay), "max-autotune" (also autotuned GEMM/conv kernels).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal, cast, get_args

if TYPE_CHECKING:  # torch is imported when compiling: the CLI reads the modes without it
    import torch
    from torch import nn

CompileMode = Literal["off", "default", "reduce-overhead", "max-autotune"]
COMPILE_MODES: tuple[CompileMode, ...] = get_args(CompileMode)
GRAPHS_PER_UNET = 64  # working sizes × injection variants a long-lived worker may see


def compile_unet(unet: nn.Module, mode: CompileMode, backend: str = "inductor") -> nn.Module | None:
    """The compiled sampling UNet, or None for "off". Compilation itself happens on the first call
    at each shape (seconds to minutes; the worker's warm-up pays it for its default size).
    `backend` other than inductor (which alone takes a mode) is for tests: dynamo's "eager" runs the
    graphs inductor would be given, with the same guards, in seconds rather than minutes on a CPU."""
    if mode not in COMPILE_MODES:
        raise ValueError(f"compile mode {mode!r}: expected one of {', '.join(COMPILE_MODES)}")
    if mode == "off":
        return None
    import torch
    from torch import nn

    dynamo = torch._dynamo.config
    dynamo.cache_size_limit = max(dynamo.cache_size_limit, GRAPHS_PER_UNET)
    dynamo.accumulated_cache_size_limit = max(dynamo.accumulated_cache_size_limit, GRAPHS_PER_UNET)
    if backend != "inductor":
        return cast(nn.Module, torch.compile(unet, backend=backend, dynamic=False))
    return cast(nn.Module, torch.compile(unet, mode=mode, dynamic=False))


def begin_step(mode: CompileMode, device: torch.device) -> None:
    """Before each compiled call under CUDA graphs: tells torch the previous call's outputs are
    consumed, so the graph's buffers may be reused (the sampler copies eps out at once)."""
    if mode == "reduce-overhead" and device.type == "cuda":
        import torch

        torch.compiler.cudagraph_mark_step_begin()

"""What an edit costs, in full UNet forward passes at its working size (`unet_equivalents`).

Every kind of network evaluation the editor runs is counted per call, and its cost in FLOPs is
measured once, with torch's FlopCounterMode, on its first call at a working size and batch (the
editor keeps the table for its lifetime). Partial passes (the guidance estimator stops after
up_blocks[2], §5.1) and backward passes are so counted by what they really compute. The unit,
one full UNet forward at batch 1, is the inversion's cost per image (every first edit at a size
inverts). Beside it, `release_unet_equivalents` prices the authors' loop for the same schedule
with the same per-call costs (§12.1: reference features recomputed at every guided pass, every
rollback run, no cache across edits).

A FLOP count is device-independent: every later change to the engine shows its effect on the CPU.
The rows of one kind differ a little (K/V concatenation lengthens drag's keys from step 5, the
image-prompt branch adds an attention in its window); the first call prices them all.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from torch.ops import aten
from torch.utils.flop_counter import FlopCounterMode, sdpa_backward_flop_count, sdpa_flop_count

from engine.schedule import StepPlan


def _sdpa(query: tuple, key: tuple, value: tuple, *args: object, **kwargs: object) -> int:
    return sdpa_flop_count(query, key, value)


def _sdpa_backward(grad_out: tuple, query: tuple, key: tuple, value: tuple, *args: object, **kwargs: object) -> int:
    return sdpa_backward_flop_count(grad_out, query, key, value)


# torch's table prices the CUDA attention kernels; the CPU's fused kernel computes the same.
_CPU_ATTENTION = {
    aten._scaled_dot_product_flash_attention_for_cpu: _sdpa,
    aten._scaled_dot_product_flash_attention_for_cpu_backward: _sdpa_backward,
}

KINDS = ("inversion", "sampling", "reference_features", "guidance_forward", "guidance_backward", "rollback")


class CostTable:
    """FLOPs per call, by (kind, working size, batch), measured on the first such call."""

    def __init__(self) -> None:
        self.flops: dict[tuple[str, tuple[int, int], int], int] = {}

    def meter(self, size: tuple[int, int]) -> CostMeter:
        return CostMeter(self, size)

    def unit(self, size: tuple[int, int]) -> float | None:
        """FLOPs of one full UNet forward at batch 1 (the inversion's, per image)."""
        for (kind, s, batch), flops in self.flops.items():
            if kind == "inversion" and s == size and flops > 0:
                return flops / batch
        return None


class CostMeter:
    """One edit's calls, priced from the table."""

    def __init__(self, table: CostTable, size: tuple[int, int]) -> None:
        self.table = table
        self.size = size
        self.calls: Counter[tuple[str, int]] = Counter()

    @contextmanager
    def call(self, kind: str, batch: int, replay: Callable[[], object] | None = None) -> Iterator[bool]:
        """Count one call of `kind` at `batch` (when it succeeds); the first such call at this
        working size runs under FlopCounterMode and prices every later one. Yields whether this
        call is measured: a compiled UNet's kernels are invisible to the counter, so the caller
        runs that one eagerly.

        With `replay` (a second, throwaway copy of the call), the first call is priced on the
        replay and itself runs unmetered: a backward pass under a dispatch mode accumulates its
        gradients in another order (float rounding, seen on torch 2.13's CPU build), and an edit's
        pixels must not depend on whether it was the first at its size. The replay costs one
        backward per working size and editor."""
        assert kind in KINDS, kind
        key = (kind, self.size, batch)
        if key in self.table.flops:
            yield False
        elif replay is not None:
            counter = FlopCounterMode(display=False, custom_mapping=_CPU_ATTENTION)
            with counter:
                replay()
            self.table.flops[key] = counter.get_total_flops()
            yield False
        else:
            counter = FlopCounterMode(display=False, custom_mapping=_CPU_ATTENTION)
            with counter:
                yield True
            self.table.flops[key] = counter.get_total_flops()
        self.calls[kind, batch] += 1

    def _price(self, counts: dict[tuple[str, int], int]) -> float | None:
        unit = self.table.unit(self.size)
        if unit is None:
            return None
        total = 0
        for (kind, batch), n in counts.items():
            if n == 0:
                continue
            flops = self.table.flops.get((kind, self.size, batch))
            if flops is None:
                return None
            total += n * flops
        return total / unit

    def unet_equivalents(self) -> float | None:
        """This edit's cost in full UNet forwards at batch 1 (None before any inversion at the size)."""
        return self._price(dict(self.calls))

    def release_unet_equivalents(
        self, schedule: list[StepPlan], images: int, energies: int, backward_batch: int = 1
    ) -> float | None:
        """The release's loop for the same schedule at the same per-call costs (§12.1). Its backward
        passes are priced from this edit's own (`backward_batch` energies per call: the FLOPs of
        two gradients are the same batched or not)."""
        return self._price(release_calls(schedule, images, energies, backward_batch))


def release_calls(
    schedule: list[StepPlan], images: int, energies: int, backward_batch: int = 1
) -> dict[tuple[str, int], int]:
    """Calls of the authors' loop by (kind, batch) for one first edit (§12.1, §9): N inversion
    passes; the CFG pass at every sampling pass; at every guided pass the reference features
    (one batch of the images), the current features and one backward per energy; and a rollback
    after every time-travel pass, the discarded last one included."""
    passes = sum(r.passes for r in schedule)
    guided_passes = sum(r.passes for r in schedule if r.guide)
    return {
        ("inversion", images): len(schedule),
        ("sampling", 2): passes,
        ("reference_features", images): guided_passes,
        ("guidance_forward", 1): guided_passes,
        ("guidance_backward", backward_batch): guided_passes * energies // backward_batch,
        ("rollback", 1): sum(r.passes for r in schedule if r.passes > 1),
    }

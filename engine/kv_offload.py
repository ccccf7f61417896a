"""The K/V bank in pinned host memory, brought to the GPU one sampling step at a time (issue 13).

The bank is most of a cache entry (≈ 62 MB per step and image at 768² in bf16, §12.1). Kept on
the host, like the authors' release does, it frees that GPU memory for more cache entries or a
larger working size; the copy of step i+1 runs on a side stream while step i computes, so the
sampler does not wait for it. On a CPU the bank is already in host memory and nothing moves.
"""

from __future__ import annotations

import torch

from engine.attention import KvBank, StepKv, step_kv


def to_host(bank: KvBank) -> KvBank:
    """A copy of the bank in pinned host memory (page-locked, so the copies back can be async)."""
    pin = torch.cuda.is_available()
    return {
        layer: {
            i: tuple(torch.empty(t.shape, dtype=t.dtype, pin_memory=pin).copy_(t) for t in kv)  # type: ignore[misc]
            for i, kv in steps.items()
        }
        for layer, steps in bank.items()
    }


class KvPrefetch:
    """Step views of a host-resident bank on `device`: `step(i)` returns {layer: (K, V)} of step i
    with the tensors on the device, and starts copying the next step in `order` on a side stream."""

    def __init__(self, bank: KvBank, device: torch.device, order: list[int]) -> None:
        self.bank = bank
        self.device = device
        self.order = [i for i in order if any(i in steps for steps in bank.values())]
        self.stream = torch.cuda.Stream(device) if device.type == "cuda" else None
        self._pending: dict[int, tuple[StepKv, torch.cuda.Event | None]] = {}
        self._current: tuple[int, StepKv] | None = None

    def _issue(self, i: int) -> None:
        if i in self._pending:
            return
        if self.stream is None:  # same memory: a view, no copy
            self._pending[i] = (step_kv(self.bank, i), None)
            return
        with torch.cuda.stream(self.stream):
            moved: StepKv = {
                layer: tuple(t.to(self.device, non_blocking=True) for t in kv)  # type: ignore[misc]
                for layer, kv in step_kv(self.bank, i).items()
            }
            event = torch.cuda.Event()
            event.record(self.stream)
        self._pending[i] = (moved, event)

    def step(self, i: int) -> StepKv:
        if self._current is not None and self._current[0] == i:  # time travel: the same step again
            return self._current[1]
        self._issue(i)
        moved, event = self._pending.pop(i)
        if event is not None:
            current = torch.cuda.current_stream(self.device)
            current.wait_event(event)
            for kv in moved.values():
                for t in kv:
                    t.record_stream(current)  # allocated on the side stream, used on this one
        self._current = (i, moved)
        later = [j for j in self.order if j > i]
        if later:
            self._issue(later[0])
        return moved

"""DDIM inversion with the memory bank (§3) and the inversion cache across edits.

A cache entry holds the inverted latents Z_inv[0..N], the decoder self-attention K/V per sampling
step, and the guidance reference features per guided step (filled on first use). Entries are
shared read-only: nothing downstream writes into them (tasks build new tensors), and the tests
check their hashes before and after an edit.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Collection, Iterator
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field

import torch

from engine.attention import AttentionControl, KvBank
from engine.sampler import AlphaTable, ddim_invert_step


@dataclass
class Inversion:
    latents: list[torch.Tensor]  # Z_inv[j] is the latent at timestep t_{N−j}; Z_inv[N] = z_T
    bank: KvBank  # layer → sampling step i → (K, V)
    features: dict[int, list[torch.Tensor]] = field(default_factory=dict)  # step i → F_ref levels

    def tensors(self) -> Iterator[torch.Tensor]:
        yield from self.latents
        for steps in self.bank.values():
            for k, v in steps.values():
                yield k
                yield v
        for levels in self.features.values():
            yield from levels

    def nbytes(self) -> int:
        """Bytes the entry really holds: each distinct storage once and whole (a view keeps all
        of its base alive), on whichever device it lives."""
        storages: dict[tuple[str, int], int] = {}
        for t in self.tensors():
            st = t.untyped_storage()
            storages[(str(t.device), st.data_ptr())] = st.nbytes()
        return sum(storages.values())


@torch.no_grad()
def invert(
    unet: torch.nn.Module,
    control: AttentionControl,
    z0: torch.Tensor,
    context: torch.Tensor,
    timesteps: list[int],
    ratio: int,
    alphas: AlphaTable,
    on_step: Callable[[int], None] = lambda k: None,
    record_steps: Collection[int] | None = None,
    around_call: Callable[[], AbstractContextManager[object]] = nullcontext,
) -> Inversion:
    """DDIM inversion with conditional text only (§3.2): for k = 0…N−1, s = t_{N−1−k}, s′ = s − ratio,
    z_{k+1} = √ᾱ(s)·x̂0 + √(1−ᾱ(s))·ε with x̂0 from z_k at s′. The decoder self-attention K/V of
    the pass at s are stored under sampling step i = N−1−k (§3.3, §14.11), for the steps in
    `record_steps` only (None: every step): the release stores all 50, the sampler injects at
    45 (move, drag, face) or 36 (appearance, paste) of them, and the K/V are most of an entry."""
    n = len(timesteps)
    bank: KvBank = {}
    latents = [z0]
    z = z0
    dtype = next(unet.parameters()).dtype
    for k in range(n):
        s = timesteps[n - 1 - k]
        i = n - 1 - k
        with control.record(i) if record_steps is None or i in record_steps else nullcontext({}) as recorded:
            with around_call():  # the editor's cost meter
                eps = unet(z.to(dtype), s, encoder_hidden_states=context).sample.float()
        for layer, kv in recorded.items():
            bank.setdefault(layer, {})[i] = kv
        z = ddim_invert_step(z, eps, s - ratio, s, alphas)
        latents.append(z)
        on_step(k)
    return Inversion(latents=latents, bank=bank)


class InversionCache:
    """LRU of inversions under a byte budget. A second edit of the same image (same pixels,
    prompts, working size, steps and model) reuses latents, K/V and reference features."""

    def __init__(self, budget_bytes: int) -> None:
        self.budget = budget_bytes
        self._entries: OrderedDict[tuple, Inversion] = OrderedDict()
        self._sizes: dict[tuple, int] = {}  # bytes per entry, measured when it is put
        self._lock = threading.Lock()

    def get(self, key: tuple) -> Inversion | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None:
                self._entries.move_to_end(key)
            return entry

    def put(self, key: tuple, entry: Inversion) -> None:
        """Insert or refresh (after reference features were added) and evict to the budget."""
        with self._lock:
            self._entries[key] = entry
            self._entries.move_to_end(key)
            self._sizes[key] = entry.nbytes()
            while self._entries and sum(self._sizes.values()) > self.budget:
                old, _ = self._entries.popitem(last=False)
                del self._sizes[old]

    def shrink(self, budget_bytes: int, keep: Inversion | None = None) -> None:
        """Evict least recently used entries (never `keep`) until at most `budget_bytes` are held."""
        with self._lock:
            for old in list(self._entries):
                if sum(self._sizes.values()) <= budget_bytes:
                    break
                if self._entries[old] is not keep:
                    del self._entries[old], self._sizes[old]

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._sizes.clear()

    def entries(self) -> list[Inversion]:
        with self._lock:
            return list(self._entries.values())

    def __len__(self) -> int:
        return len(self._entries)

    def nbytes(self) -> int:
        with self._lock:
            return sum(self._sizes.values())

"""The per-step control schedule (algorithm document §4) as data: one row per sampling step.

The release defines every window for 50 steps. For N steps the engine maps them in proportion:
an interval window [a, b) of the 50-step table becomes [round(a·N/50), round(b·N/50)), and a
sparse set of steps (the even guided steps 10…28, the time-travel steps 22…28) maps each member
i to ⌊i·N/50⌋. N = 50 reproduces the release's table exactly (tested).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

KvOp = Literal["replace", "concat", "composite"]

REFERENCE_STEPS = 50

# The 50-step table of §4 (alg 'D+'), shared by every task.
IP_WINDOW = (10, 20)  # image-prompt branch on (§2.1.7)
SDE_WINDOW = (11, 20)  # regional SDE: 10 < i < 20 (§6.5)
GUIDED_DENSE = (0, 10)  # guidance at every step i < 10 (§4)
GUIDED_SPARSE = tuple(range(10, 30, 2))  # and at even i in 10…28
TIME_TRAVEL = (22, 24, 26, 28)  # 3 passes each (§9)
TIME_TRAVEL_PASSES = 3

# KV injection windows per task (§7): [start, stop) at 50 steps.
KV_WINDOWS: dict[str, tuple[KvOp, tuple[int, int]]] = {
    "move": ("replace", (5, 50)),
    "drag": ("concat", (5, 50)),
    "landmark": ("concat", (5, 50)),
    "appearance": ("composite", (0, 36)),
    "paste": ("composite", (0, 36)),
}


@dataclass(frozen=True)
class StepPlan:
    """What happens at sampling step i (timestep t, previous timestep t_prev)."""

    i: int
    t: int
    t_prev: int
    ip: bool  # image-prompt branch active
    kv: KvOp | None  # decoder self-attention K/V injection
    guide: bool  # regional score-based gradient guidance
    sde: bool  # regional SDE noise (η from the task)
    passes: int  # 1, or 3 with time travel


def ddim_timesteps(steps: int, train_steps: int = 1000, offset: int = 1) -> list[int]:
    """diffusers' DDIM "leading" spacing with steps_offset 1: 981, 961, …, 1 for 50 steps."""
    ratio = train_steps // steps
    return [(steps - 1 - i) * ratio + offset for i in range(steps)]


def _window(w: tuple[int, int], n: int) -> range:
    scale = n / REFERENCE_STEPS
    return range(round(w[0] * scale), round(w[1] * scale))


def _sparse(members: tuple[int, ...], n: int) -> set[int]:
    return {i * n // REFERENCE_STEPS for i in members}


def build_schedule(
    task: str, steps: int, guidance: bool, train_steps: int = 1000, time_travel: bool = True
) -> list[StepPlan]:
    """The schedule for one task. `guidance` False (s_E = 0) means no guidance and no time travel;
    SDE, image prompt and KV injection still apply (§4). `time_travel` False keeps the guidance
    and drops only the repeats (the paper's ablation; the quality benchmark measures it)."""
    ts = ddim_timesteps(steps, train_steps)
    ratio = train_steps // steps
    kv_op, kv_window = KV_WINDOWS[task]
    ip = _window(IP_WINDOW, steps)
    sde = _window(SDE_WINDOW, steps)
    kv = _window(kv_window, steps)
    guided = set(_window(GUIDED_DENSE, steps)) | _sparse(GUIDED_SPARSE, steps)
    travel = _sparse(TIME_TRAVEL, steps)
    rows = []
    for i, t in enumerate(ts):
        guide = guidance and i in guided
        rows.append(
            StepPlan(
                i=i,
                t=t,
                t_prev=t - ratio,
                ip=i in ip,
                kv=kv_op if i in kv else None,
                guide=guide,
                sde=i in sde,
                passes=TIME_TRAVEL_PASSES if guide and time_travel and i in travel else 1,
            )
        )
    return rows


def count_evaluations(schedule: list[StepPlan], guidance_energies: int) -> dict[str, int]:
    """Network evaluations the schedule implies (§12.1), counting a CFG batch of two once and
    skipping the release's discarded third rollback. Reference features are computed once per
    distinct guided step (cached; see docs/deviations.md), the current features once per pass."""
    passes = sum(r.passes for r in schedule)
    guided_passes = sum(r.passes for r in schedule if r.guide)
    guided_steps = sum(1 for r in schedule if r.guide)
    return {
        "inversion": len(schedule),
        "sampling": passes,
        "guidance_forward": guided_passes + guided_steps,
        "guidance_backward": guided_passes * guidance_energies,
        "rollback": sum(r.passes - 1 for r in schedule),
    }

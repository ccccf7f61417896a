"""Progress reporting from the engine's per-step callback into the RQ job's meta, with an ETA."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

# The two stages with steps: the inversion (one UNet pass per step) and the sampling (CFG doubles
# the batch; guidance adds a backward pass, time travel repeats steps). Everything else is short.
INVERSION, SAMPLING = "inversion", "sampling"


@dataclass
class StepTimes:
    """What the previous edits on this worker measured: seconds per sampling step over seconds per
    inversion step. Shared by a worker's reporters, so an ETA made during the inversion can count
    the sampling still to come. 2.5 until measured (CFG's two passes plus guidance, demo model)."""

    sampling_per_inversion: float = 2.5

    def learn(self, inversion_step_s: float, sampling_step_s: float) -> None:
        if inversion_step_s > 0 and sampling_step_s > 0:
            self.sampling_per_inversion = sampling_step_s / inversion_step_s


class ProgressReporter:
    """Engine callback `progress(stage, step, total)` -> a write to the job's meta.

    Every new (stage, step) is written, so a client never misses a step; repeated reports of the
    same step (sub-step callbacks) are written at most every `min_interval_s`, and only when they
    change something. Each write is one HSET (`job.save_meta`). Each write carries `eta_s`, the
    seconds left estimated from this edit's own step times (None until one step is timed).
    """

    def __init__(
        self,
        write: Callable[[dict], None],
        min_interval_s: float = 0.5,
        history: StepTimes | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._write = write
        self._min_interval_s = min_interval_s
        self._history = history if history is not None else StepTimes()
        self._clock = clock
        self._last: dict | None = None
        self._last_time = 0.0
        self._previous_report = clock()
        self._stage: str | None = None
        self._stage_start = self._previous_report
        self._step_s: dict[str, float] = {}  # mean seconds per step, per stage, so far
        self._inversion_total = 0
        self.writes = 0

    def __call__(self, stage: str, step: int, total: int) -> None:
        now = self._clock()
        if stage != self._stage:  # a stage starts where the previous report left off
            self._stage, self._stage_start = stage, self._previous_report
        self._previous_report = now
        if stage in (INVERSION, SAMPLING) and step > 0:  # steps are reported once done
            self._step_s[stage] = (now - self._stage_start) / step
            if stage == INVERSION:
                self._inversion_total = total
        progress = {"stage": str(stage), "step": int(step), "total": int(total)}
        if progress == self._last:
            return
        same_step = self._last is not None and (self._last["stage"], self._last["step"]) == (stage, step)
        if same_step and now - self._last_time < self._min_interval_s:
            return
        self._last, self._last_time = progress, now
        self.writes += 1
        self._write({**progress, "eta_s": self._eta(stage, step, total)})

    def _eta(self, stage: str, step: int, total: int) -> float | None:
        per = self._step_s.get(stage)
        if per is None:
            return None
        left = (total - step) * per
        if stage == INVERSION:  # the sampling has as many steps as the inversion
            left += total * per * self._history.sampling_per_inversion
        elif stage == SAMPLING and step == total and INVERSION in self._step_s:
            self._history.learn(self._step_s[INVERSION], per)
        return round(left, 1)

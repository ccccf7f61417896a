"""Progress reporting from the engine's per-step callback into the RQ job's meta."""

from __future__ import annotations

import time
from collections.abc import Callable


class ProgressReporter:
    """Engine callback `progress(stage, step, total)` -> a write to the job's meta.

    Every new (stage, step) is written, so a client never misses a step; repeated reports of the
    same step (sub-step callbacks) are written at most every `min_interval_s`, and only when they
    change something. Each write is one HSET (`job.save_meta`).
    """

    def __init__(self, write: Callable[[dict], None], min_interval_s: float = 0.5) -> None:
        self._write = write
        self._min_interval_s = min_interval_s
        self._last: dict | None = None
        self._last_time = 0.0
        self.writes = 0

    def __call__(self, stage: str, step: int, total: int) -> None:
        progress = {"stage": str(stage), "step": int(step), "total": int(total)}
        if progress == self._last:
            return
        now = time.monotonic()
        same_step = self._last is not None and (self._last["stage"], self._last["step"]) == (stage, step)
        if same_step and now - self._last_time < self._min_interval_s:
            return
        self._last, self._last_time = progress, now
        self.writes += 1
        self._write(progress)

"""The ready-worker registry: a worker registers once warm and refreshes on every heartbeat; an
entry lives for one lease (`JobContext.lease_s`) unrenewed."""

from __future__ import annotations

import json
import time

from service.jobs.context import JobContext


def register_worker(ctx: JobContext, info: dict) -> None:
    """Mark a worker ready (or refresh it): called once warm, then on every heartbeat."""
    info = {**info, "last_seen": time.time()}
    with ctx.redis.pipeline() as pipe:
        pipe.set(ctx.keys.worker(info["name"]), json.dumps(info), ex=ctx.lease_s)
        pipe.zadd(ctx.keys.workers, {info["name"]: info["last_seen"]})
        pipe.execute()


def unregister_worker(ctx: JobContext, name: str) -> None:
    with ctx.redis.pipeline() as pipe:
        pipe.delete(ctx.keys.worker(name))
        pipe.zrem(ctx.keys.workers, name)
        pipe.execute()


def ready_workers(ctx: JobContext) -> list[dict]:
    """Workers registered warm whose heartbeat is still live (expired entries are dropped here)."""
    names = [n.decode() for n in ctx.redis.zrange(ctx.keys.workers, 0, -1)]
    if not names:
        return []
    values = ctx.redis.mget([ctx.keys.worker(n) for n in names])
    alive, dead = [], []
    for name, raw in zip(names, values, strict=True):
        if raw is None:
            dead.append(name)
        else:
            alive.append(json.loads(raw))
    if dead:
        ctx.redis.zrem(ctx.keys.workers, *dead)
    return alive

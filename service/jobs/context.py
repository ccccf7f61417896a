"""`JobContext`: the Redis client and the settings that every job-contract function takes, as one
argument; the RQ queue it names; `connect()` for the client.

The Redis client must be created with decode_responses=False (RQ stores bytes); `connect()` does
that. A context is cheap (two references): the API builds one per request, because tests swap
the settings of a running app.
"""

from __future__ import annotations

from dataclasses import dataclass

from redis import Redis
from rq import Queue
from rq.serializers import JSONSerializer

from service.jobs.keys import Keys
from service.settings import Settings

JOB_FUNC = "worker.jobs.run_edit"
SERIALIZER = JSONSerializer  # job data and meta are plain JSON: readable, and no unpickling from Redis
LEASE_HEARTBEATS = 4


@dataclass(frozen=True)
class JobContext:
    redis: Redis
    settings: Settings

    @property
    def keys(self) -> Keys:
        return Keys(self.settings.queue_name)

    @property
    def lease_s(self) -> int:
        """How long a worker's heartbeat (and a running job's RQ execution) stays valid unrenewed."""
        return LEASE_HEARTBEATS * self.settings.heartbeat_s

    def queue(self) -> Queue:
        return Queue(self.settings.queue_name, connection=self.redis, serializer=SERIALIZER)


def connect(settings: Settings, socket_timeout: float | None = 10.0) -> Redis:
    """A Redis client for settings.redis_url, as RQ needs it (bytes responses).

    Workers pass socket_timeout=None: their blocking dequeue waits longer than any read timeout.
    """
    if not settings.redis_url:
        raise ValueError("REDIS_URL is not set (embedded mode builds its own in-process Redis)")
    return Redis.from_url(
        settings.redis_url,
        socket_connect_timeout=3,
        socket_timeout=socket_timeout,
        health_check_interval=30,
    )

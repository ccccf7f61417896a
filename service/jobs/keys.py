"""The name of every Redis key the service writes, under one prefix `diffeditor:<queue_name>:`.

RQ's own keys (`rq:job:<id>`, `rq:queue:<queue_name>`, its registries) are RQ's; everything else
the API and the workers write is named here:

    cancel:<job_id>            flag (string, TTL job_ttl_s) that a running job's worker checks between steps
    workers                    sorted set: worker name -> last heartbeat (unix seconds)
    worker:<name>              JSON {name, device, model, is_demo, gpu_memory_bytes, last_seen}, TTL = lease
    owner:<owner>              sorted set of the owner's job ids (score: enqueue time), TTL job_ttl_s
    metrics:jobs               hash "task|outcome" -> count          (outcome: succeeded, failed, canceled)
    metrics:errors             hash "task|code" -> count             (failure codes)
    metrics:durations          hash "task|stage|le" -> cumulative count, "task|stage|sum", "task|stage|count"
    sweep-lock                 the watchdog's lock (string, TTL max(10, 2 * watchdog_s))
    rate:<owner>:<window>      submissions in one one-minute window (counter, TTL 65 s)
    idem:<owner>:<sha256>      an Idempotency-Key's record (JSON, TTL job_ttl_s); the client's key hashed
    events:<job_id>            the job's event log (stream of {type, data}, capped, TTL job_ttl_s), see events.py
    preview:<job_id>           hash {image: JPEG bytes, step, total}: the latest step preview (TTL job_ttl_s), see previews.py
    deadlines                  sorted set: queued job id -> its deadline (unix seconds), see deadlines.py
    webhook:<webhook_id>       one webhook delivery's record (JSON, TTL job_ttl_s), see service/webhooks
    webhooks-due               sorted set: webhook_id -> when its next attempt is due (unix seconds)
    webhook-log:<job_id>       the job's delivery attempts (list of JSON, the latest 50, TTL job_ttl_s)
    webhook-throttle:<job_id>  flag (string, PX webhook_progress_interval_s): a progress webhook was sent
    metrics:webhooks           hash "event|outcome" -> count   (outcome: delivered, retrying, failed, refused)
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

PREFIX = "diffeditor"


@dataclass(frozen=True)
class Keys:
    queue_name: str

    @property
    def prefix(self) -> str:
        """`diffeditor:<queue_name>:`, the start of every key below."""
        return f"{PREFIX}:{self.queue_name}:"

    def _key(self, *parts: str) -> str:
        return self.prefix + ":".join(parts)

    def cancel(self, job_id: str) -> str:
        return self._key("cancel", job_id)

    @property
    def workers(self) -> str:
        return self._key("workers")

    def worker(self, name: str) -> str:
        return self._key("worker", name)

    def owner(self, owner: str) -> str:
        return self._key("owner", owner)

    def metrics(self, kind: str) -> str:
        return self._key("metrics", kind)

    @property
    def sweep_lock(self) -> str:
        return self._key("sweep-lock")

    def rate(self, owner: str, window: int) -> str:
        return self._key("rate", owner, str(window))

    def events(self, job_id: str) -> str:
        return self._key("events", job_id)

    def preview(self, job_id: str) -> str:
        return self._key("preview", job_id)

    @property
    def deadlines(self) -> str:
        return self._key("deadlines")

    def webhook(self, webhook_id: str) -> str:
        return self._key("webhook", webhook_id)

    @property
    def webhooks_due(self) -> str:
        return self._key("webhooks-due")

    def webhook_log(self, job_id: str) -> str:
        return self._key("webhook-log", job_id)

    def webhook_throttle(self, job_id: str) -> str:
        return self._key("webhook-throttle", job_id)

    def idempotency(self, owner: str, client_key: str) -> str:
        # Hashed: a bounded key length whatever the client sent.
        return self._key("idem", owner, hashlib.sha256(client_key.encode("utf-8")).hexdigest())

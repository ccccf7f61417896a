"""The job contract between the API and the workers, on RQ; nothing here imports torch.

RQ holds the job state (queue, started/finished/failed/canceled registries, retries, timeouts);
this package adds only what RQ lacks, one module per concern:

    ids        the job-id rule: how an id is made and what a valid one looks like
    keys       the name of every Redis key it writes, under the one prefix `diffeditor:<queue_name>:`
    context    `JobContext` (the Redis client and the settings, the argument every function here
               takes), the RQ queue, `connect()`
    status     the API's six states, RQ's mapped onto them, the finished ones
    events     each job's event log (a Redis stream): what the SSE route replays and webhooks send
    claims     ending a queued job without running it (cancel, expiry), by whoever takes it off the queue
    deadlines  `deadline_s`: the deadline index, expiring queued jobs whose deadline passed
    lifecycle  enqueue, view, cancel (flag and queued cancel), queue depth
    quotas     each owner's set of job ids, for the per-key cap on queued jobs
    workers    the ready-worker registry (heartbeats with a lease)
    outcomes   counters of finished jobs and their stage-duration histogram, for /metrics
    watchdog   `sweep_abandoned`: jobs whose worker died are requeued once or failed

The job's own RQ hash carries `meta` = {"owner", "task", "params", "options", "progress", "error",
"stats"}; `options` are the job options of diffeditor/job_options.py (webhook, its events, the
deadline as `deadline_s` and `deadline_at`).
Every RQ job is enqueued with explicit TTLs (settings.job_ttl_s for queued, finished and failed
jobs), a per-job timeout (settings.job_timeout_s) and Retry(max=1): the one retry is for a job
whose worker died (the watchdog requeues it); the worker zeroes it for every error it reports
itself, so engine errors are never retried.
"""

"""Signed webhooks (docs/api.md, Webhooks), torch-free, one module per concern:

    signing       Standard Webhooks headers (`webhook-id`, `webhook-timestamp`, `webhook-signature`),
                  and `verify()` for receivers
    destinations  which URLs may be delivered to (the SSRF rule), checked at submit and at every attempt
    tls           the TLS context https receivers are verified with (certifi's CAs or the operator's)
    deliveries    scheduling a delivery when a job publishes an event (called by service.jobs.events),
                  the delivery records, the per-job delivery log, the counters for /metrics
    deliverer     the loop that claims due deliveries and posts them from a small thread pool
    cli           `diffeditor webhooks`: the deliverer as a process of its own

Workers only publish events; the deliveries are made by a deliverer (a thread of every API process
by default, or `diffeditor webhooks`) from the Redis queue `keys.webhooks_due`, so that a slow or
dead receiver never holds a GPU, and never touches the job's own result.
"""

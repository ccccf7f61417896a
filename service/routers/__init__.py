"""HTTP routers, one per resource: edits (jobs), meta (tasks, info), samples (sample scenes),
health (probes, metrics)."""

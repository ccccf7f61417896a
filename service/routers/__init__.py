"""HTTP routers, one per resource: edits (jobs), meta (tasks, info), health (probes, metrics)."""

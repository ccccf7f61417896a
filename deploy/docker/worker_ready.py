#!/usr/bin/env python3
"""Readiness probe of a worker container (Kubernetes exec probe; `diffeditor-worker-ready` in the
worker images). Exit 0 when this container's worker is registered in Redis as warm with a live
heartbeat, i.e. its models are loaded and warmed up; exit 1 otherwise, saying why.

The worker is found by name: DIFFEDITOR_WORKER_NAME (the manifests pass the pod name to both the
worker's --name and this probe), else the worker's default name `<hostname>-<pid>`.
"""

from __future__ import annotations

import os
import socket
import sys


def is_mine(name: str, wanted: str | None, hostname: str) -> bool:
    if wanted:
        return name == wanted
    return name == hostname or name.startswith(f"{hostname}-")


def main() -> int:
    from service.jobs.context import JobContext, connect
    from service.jobs.workers import ready_workers
    from service.settings import Settings

    settings = Settings()
    wanted = os.environ.get("DIFFEDITOR_WORKER_NAME") or None
    hostname = socket.gethostname()
    try:
        workers = ready_workers(JobContext(connect(settings, socket_timeout=3), settings))
    except Exception as exc:  # a probe reports, it never raises
        print(f"not ready: cannot read the worker registry in Redis: {exc}", file=sys.stderr)
        return 1
    mine = [w for w in workers if is_mine(str(w.get("name", "")), wanted, hostname)]
    if not mine:
        who = wanted or f"{hostname}-*"
        print(f"not ready: worker {who} is not registered warm (loading models or warming up?)", file=sys.stderr)
        return 1
    print(f"ready: {mine[0]['name']} ({mine[0].get('device')}, demo={mine[0].get('is_demo')})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""`diffeditor serve [--host H] [--port P] [--model SPEC] ...`: the HTTP API under uvicorn.

With REDIS_URL set, this is the API only (`service.serve.serve_api`; workers run as
`diffeditor worker`), and torch is never imported. Without it, embedded mode: an in-process
Redis (fakeredis), the API in a server thread and ONE worker in the main thread (so RQ's
SIGTERM/SIGINT warm shutdown and its SIGALRM job timeout work as in a real worker), on the model
from settings or the demo model, with the store in settings.data_dir (./data). Stop it with
Ctrl+C: the current edit finishes first.

The embedded launcher lives here, next to the CLI's dispatch, rather than in `service`: it is
the one place that joins the service and the worker, and `service` never imports `worker`.
"""

from __future__ import annotations

import importlib.util
import logging
import sys
import threading
from typing import Any

from service.serve import configure_logging, parse_args, serve_api
from service.settings import Settings, settings_from_args

log = logging.getLogger("diffeditor.serve")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(list(sys.argv[1:] if argv is None else argv))
    configure_logging()
    settings = settings_from_args(args, "diffeditor serve")
    if settings.redis_url:
        return serve_api(settings, args.host, args.port)
    missing = [m for m in ("fakeredis", "torch") if importlib.util.find_spec(m) is None]
    if missing:  # the slim API image has neither: it needs a real queue and separate workers
        print(
            f"diffeditor serve: REDIS_URL is not set, and embedded mode needs {' and '.join(missing)}, "
            "which this installation lacks (the API image). Set REDIS_URL=redis://HOST:6379/0 and run "
            "workers with `diffeditor worker`, or install the engine: pip install '.[engine,embedded]'.",
            file=sys.stderr,
        )
        return 2
    return serve_embedded(settings, args.host, args.port)


def serve_embedded(settings: Settings, host: str, port: int, editor: Any | None = None) -> int:
    """API + one worker in this process on fakeredis. `editor` replaces the model (tests only)."""
    import fakeredis
    import uvicorn

    from service.app import create_app

    server = fakeredis.FakeServer()
    api_redis = fakeredis.FakeRedis(server=server)
    worker_redis = fakeredis.FakeRedis(server=server)
    log.warning(
        "EMBEDDED MODE (REDIS_URL is not set): in-process queue and one in-process worker on %s; "
        "store in %s. Jobs do not survive a restart. For production set REDIS_URL and run `diffeditor worker`.",
        settings.model or "the demo model (trained on a shapes world; load SD1.5 for photographs)",
        settings.data_dir.resolve(),
    )
    http = uvicorn.Server(uvicorn.Config(create_app(settings, redis=api_redis), host=host, port=port, log_level="info"))
    thread = threading.Thread(target=http.run, name="diffeditor-http", daemon=True)
    thread.start()  # /healthz answers at once; /readyz turns true once the worker is warm
    try:
        from worker.runtime import build_runtime, run_worker  # torch loads here, in embedded mode only

        runtime = build_runtime(settings, worker_redis, "embedded", editor=editor)
        if not thread.is_alive():
            log.error("the HTTP server did not start (is port %d free?)", port)
            return 1
        return run_worker(runtime)
    except KeyboardInterrupt:
        return 0
    finally:
        http.should_exit = True
        thread.join(timeout=10)

"""`diffeditor serve` with REDIS_URL set: the HTTP API alone under uvicorn (workers run as
`diffeditor worker`); torch is never imported. Its command line is parsed here; without REDIS_URL
the CLI's `serve` runs embedded mode instead (`diffeditor.serve`), which starts a worker too.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

from service.settings import Settings, add_cli_options

log = logging.getLogger("diffeditor.serve")


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="diffeditor serve",
        description="Run the HTTP API. Without REDIS_URL: embedded mode, with an in-process queue and worker.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    add_cli_options(parser)
    return parser.parse_args(argv)


def configure_logging() -> None:
    level = os.environ.get("DIFFEDITOR_LOG_LEVEL", "INFO").upper()
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)


def serve_api(settings: Settings, host: str, port: int) -> int:
    import uvicorn

    from service.app import create_app

    log.info("API only, queue %r; run workers with `diffeditor worker`", settings.queue_name)
    uvicorn.run(create_app(settings), host=host, port=port, log_level="info", proxy_headers=True)
    return 0

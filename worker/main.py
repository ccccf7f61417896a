"""`diffeditor worker [--burst] [--name N] [--model SPEC] ...`: one process per GPU, on the queue at REDIS_URL."""

from __future__ import annotations

import argparse
import logging
import os
import socket
import sys

from service.jobs.context import connect
from service.settings import add_cli_options, settings_from_args

log = logging.getLogger("diffeditor.worker")


def default_name() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="diffeditor worker",
        description="Run one GPU worker: load the models once, warm up, then run queued edits one at a time.",
    )
    parser.add_argument("--burst", action="store_true", help="exit once the queue is empty")
    parser.add_argument("--name", default=None, help="worker name, unique among live workers (default: host-pid)")
    add_cli_options(parser)
    return parser.parse_args(argv)


def setup_logging() -> None:
    level = os.environ.get("DIFFEDITOR_LOG_LEVEL", "INFO").upper()
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(list(sys.argv[1:] if argv is None else argv))
    setup_logging()
    settings = settings_from_args(args, "diffeditor worker")
    if not settings.redis_url:
        print(
            "diffeditor worker: REDIS_URL is not set. Point it at the queue's Redis, "
            "or run `diffeditor serve` for the all-in-one embedded mode.",
            file=sys.stderr,
        )
        return 2
    from worker.runtime import build_runtime, run_worker  # torch loads here

    redis = connect(settings, socket_timeout=None)  # the idle dequeue blocks longer than any read timeout
    name = args.name or default_name()
    log.info("worker %s: loading models (queue %r at %s)", name, settings.queue_name, _redacted(settings.redis_url))
    runtime = build_runtime(settings, redis, name)
    return run_worker(runtime, burst=args.burst)


def _redacted(url: str) -> str:
    """The Redis URL without its password, for the log."""
    if "@" not in url:
        return url
    scheme, rest = url.split("://", 1)
    return f"{scheme}://***@{rest.split('@', 1)[1]}"


if __name__ == "__main__":
    raise SystemExit(main())

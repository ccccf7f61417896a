"""`diffeditor webhooks [--redis-url URL]`: the webhook deliverer as a process of its own.

Every API process delivers webhooks from a thread by default (`DIFFEDITOR_WEBHOOK_DELIVERER`);
this command does the same work alone, torch-free, for deploys that keep outbound traffic out of
the API pods (then set DIFFEDITOR_WEBHOOK_DELIVERER=0 on the API). Any number may run: claims are
atomic. Stops on SIGTERM or SIGINT; an attempt in flight then is made again after its lease.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from types import FrameType

from service.jobs.context import JobContext, connect
from service.serve import configure_logging
from service.settings import add_cli_options, settings_from_args
from service.store import make_store
from service.webhooks.deliverer import Deliverer


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="diffeditor webhooks",
        description="Deliver the queued webhooks (signed POSTs) of the jobs on REDIS_URL.",
    )
    add_cli_options(parser, ("redis_url",))
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(list(sys.argv[1:] if argv is None else argv))
    configure_logging()
    settings = settings_from_args(args, "diffeditor webhooks")
    if not settings.redis_url:
        print("diffeditor webhooks: REDIS_URL is not set (--redis-url URL)", file=sys.stderr)
        return 2
    if not settings.webhook_secret:
        print(
            "diffeditor webhooks: DIFFEDITOR_WEBHOOK_SECRET is not set: this server sends no webhooks",
            file=sys.stderr,
        )
        return 2
    ctx = JobContext(connect(settings), settings)
    deliverer = Deliverer(ctx, store=make_store(settings))
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        deliverer.run(stop)
    finally:
        deliverer.stop()
    return 0

"""The worker's per-edit overhead of step previews and webhooks, on vs off, in one run; prints a table.

    OMP_NUM_THREADS=2 python bench/events_overhead.py [--reps 4] [--steps 50] [--redis-url URL]

One process holds the demo model's editor and runs the same edit (the shapes world's `move`
sample at 128 px, a fixed seed) through the real worker (`worker.runtime.run_worker`, RQ, real
Redis: REDIS_URL, default the local one, database 3), alternating two configurations:

    off   DIFFEDITOR_PREVIEW_EVERY=0, no webhook
    on    DIFFEDITOR_PREVIEW_EVERY=5 (the default) and a webhook for start, progress and completed,
          delivered to a receiver on loopback by the webhook deliverer thread running beside it

Each job's worker-side time is its `stats.timings.total_s` (from the dequeue to the result's
write) and `engine_s` (the editor's call, which the preview callback runs inside). A first job per
configuration warms up (and fills the inversion cache, so every measured edit reuses it alike);
then `--reps` of each, interleaved, and the medians are compared. The deliverer and the receiver
share the machine's cores with the edit, as the API process's deliverer thread would not (it runs
in the API), so the "on" figure is an upper bound.
"""

from __future__ import annotations

import argparse
import io
import shutil
import statistics
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from redis import Redis

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from diffeditor.cases import sample  # noqa: E402
from service.jobs import events, lifecycle  # noqa: E402
from service.jobs.context import JobContext  # noqa: E402
from service.jobs.ids import new_job_id  # noqa: E402
from service.settings import Settings  # noqa: E402
from service.store import make_store  # noqa: E402
from service.webhooks.deliverer import Deliverer  # noqa: E402


class Receiver(BaseHTTPRequestHandler):
    received: list[str] = []

    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        self.rfile.read(int(self.headers.get("content-length", 0)))
        Receiver.received.append(self.headers.get("webhook-id", ""))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


def _png(image: Any) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=4)
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--redis-url", default="redis://127.0.0.1:6379/3")
    args = ap.parse_args()

    import logging
    import tempfile

    logging.getLogger("rq").setLevel(logging.WARNING)  # its per-job lines would bury the table

    from worker.runtime import build_runtime, run_worker

    tmp = Path(tempfile.mkdtemp(prefix="bench-events-"))
    base = Settings(
        REDIS_URL=args.redis_url,
        queue_name=f"bench-events-{uuid.uuid4().hex[:8]}",
        data_dir=tmp / "data",
        webhook_secret="whsec_" + "YmVuY2gtc2VjcmV0LWJlbmNoLXNlY3JldA==",
        webhook_allow_private=True,
    )
    redis = Redis.from_url(args.redis_url)
    store = make_store(base)
    case = sample("move")
    params = {"task": "move", **case.params, "steps": args.steps, "seed": 7, "max_resolution": 128}
    files = {name: _png(image) for name, image in case.images.items()}

    receiver = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    hook = f"http://127.0.0.1:{receiver.server_address[1]}/hook"
    deliverer = Deliverer(JobContext(redis, base), store=store, poll_s=0.05)
    deliverer.start()

    configs = {
        "off": (base.model_copy(update={"preview_every": 0}), {}),
        "on": (
            base.model_copy(update={"preview_every": 5}),
            {"webhook": hook, "webhook_events": ["start", "progress", "completed"]},
        ),
    }
    print(f"loading the demo model and warming up (steps={args.steps}, 128 px)...", flush=True)
    editor = None
    rows: dict[str, list[dict]] = {name: [] for name in configs}

    def run_one(name: str) -> dict:
        nonlocal editor
        settings, options = configs[name]
        ctx = JobContext(redis, settings)
        job_id = new_job_id()
        store.put_inputs(job_id, files)
        lifecycle.enqueue(ctx, job_id=job_id, owner="bench", params=params, options=options)
        before = len(Receiver.received)
        runtime = build_runtime(settings, redis, f"bench-{name}-{time.monotonic_ns()}", editor=editor, store=store)
        editor = runtime.editor
        run_worker(runtime, burst=True)
        view = lifecycle.get_job(ctx, job_id)
        if view is None or view.status.value != "succeeded":
            raise RuntimeError(f"{name} job {job_id}: {view.status if view else 'gone'} {view.error if view else ''}")
        time.sleep(0.5)  # let the last deliveries land before counting them
        log = events.read(ctx, job_id, count=10_000)
        return {
            "total_s": view.stats["timings"]["total_s"],
            "engine_s": view.stats["timings"]["engine_s"],
            "previews": sum(e.type == "preview" for e in log),
            "events": len(log),
            "webhooks": len(Receiver.received) - before,
        }

    for name in configs:
        run_one(name)  # warm-up: compile paths, fill the inversion cache
    for _ in range(args.reps):
        for name in configs:
            rows[name].append(run_one(name))
    deliverer.stop()
    receiver.shutdown()

    def med(name: str, key: str) -> float:
        return statistics.median(r[key] for r in rows[name])

    print(f"\n{args.reps} edits per configuration, medians (move sample, 128 px, {args.steps} steps, demo model)\n")
    print("| config | worker total s | engine s | previews | events | webhooks received |")
    print("|---|---|---|---|---|---|")
    for name in configs:
        print(
            f"| {name} | {med(name, 'total_s'):.3f} | {med(name, 'engine_s'):.3f} | {med(name, 'previews'):.0f} "
            f"| {med(name, 'events'):.0f} | {med(name, 'webhooks'):.0f} |"
        )
    d_total = med("on", "total_s") - med("off", "total_s")
    d_engine = med("on", "engine_s") - med("off", "engine_s")
    print(
        f"\noverhead on vs off: worker total {d_total * 1000:+.0f} ms ({100 * d_total / med('off', 'total_s'):+.1f}%), "
        f"engine {d_engine * 1000:+.0f} ms ({100 * d_engine / med('off', 'engine_s'):+.1f}%)"
    )
    spread = {name: (min(r["total_s"] for r in rows[name]), max(r["total_s"] for r in rows[name])) for name in configs}
    print("worker total range: " + ", ".join(f"{n} {lo:.3f}–{hi:.3f} s" for n, (lo, hi) in spread.items()))
    for key in redis.scan_iter(match=f"*{base.queue_name}*"):
        redis.delete(key)
    shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

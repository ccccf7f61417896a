"""Service benchmark on the demo model with tiny images; prints a table.

    python bench/service.py [--jobs 20] [--pollers 100] [--poll-seconds 5] [--poll-interval 0.5] [--throughput-jobs 8]

Layout as deployed: Redis (REDIS_URL, default the local one, database 2), the API as
`diffeditor serve` (uvicorn, API only) and workers as `diffeditor worker` subprocesses, all on
this machine and talking real HTTP/Redis.

1. API-side overhead per job: wall time from the POST to the fetched result (polling every 5 ms)
   minus the engine's own total from the job's stats (`stats.seconds.total`), one job at a time.
2. Status-poll latency: N concurrent pollers GET one job's status (httpx, asyncio), each every
   --poll-interval seconds like a client, then back to back (saturation: latency is queueing).
3. Throughput: M jobs through one worker, then through two (OMP_NUM_THREADS=1 each, so the
   comparison is about workers, not about torch threads).

Targets from the issue: overhead p50 <= 50 ms; poll p99 <= 20 ms at 100 pollers; two workers
close to twice one where cores allow. Client, API, workers and Redis share the same cores here.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from PIL import Image, ImageDraw
from redis import Redis

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from service.jobs.context import JobContext  # noqa: E402
from service.jobs.workers import ready_workers  # noqa: E402
from service.settings import Settings  # noqa: E402
from tests.processes import free_port, stop_process  # noqa: E402


def png(mode: str = "RGB", box: tuple[int, int, int, int] = (16, 16, 32, 32)) -> bytes:
    img = Image.new(mode, (64, 64), 0 if mode == "L" else (90, 120, 200))
    ImageDraw.Draw(img).rectangle(box, fill=255 if mode == "L" else (250, 200, 40))
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


PARAMS = {"task": "move", "offset": [8, 0], "steps": 4, "max_resolution": 64, "guidance_strength": 0.0}
FILES = {"image": png(), "mask": png("L")}


def submit(http: httpx.Client) -> str:
    files = {k: (f"{k}.png", v, "image/png") for k, v in FILES.items()}
    response = http.post("/v1/edits", data={"params": json.dumps(PARAMS)}, files=files)
    response.raise_for_status()
    return response.json()["id"]


def wait_done(http: httpx.Client, job_id: str, interval: float = 0.005, timeout: float = 300) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        body = http.get(f"/v1/edits/{job_id}").json()
        if body["status"] in ("succeeded", "failed", "canceled"):
            if body["status"] != "succeeded":
                raise RuntimeError(f"job {job_id} {body['status']}: {body.get('error')}")
            return body
        time.sleep(interval)
    raise TimeoutError(job_id)


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))]


class Processes:
    def __init__(self, env: dict[str, str], log_dir: Path) -> None:
        self.env, self.log_dir, self.procs = env, log_dir, []

    def start(self, name: str, *args: str, extra_env: dict[str, str] | None = None) -> subprocess.Popen:
        log = open(self.log_dir / f"{name}.log", "wb")  # noqa: SIM115 - lives as long as the process
        proc = subprocess.Popen(
            [sys.executable, "-m", "diffeditor", *args],
            cwd=REPO,
            env={**self.env, **(extra_env or {})},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        self.procs.append(proc)
        return proc

    def stop(self, proc: subprocess.Popen) -> None:
        stop_process(proc, timeout=60)

    def stop_all(self) -> None:
        for proc in self.procs:
            self.stop(proc)


def wait_workers(redis: Redis, settings: Settings, count: int, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while len(ready_workers(JobContext(redis, settings))) < count:
        if time.monotonic() > deadline:
            raise TimeoutError(f"{count} workers not ready")
        time.sleep(0.5)


def start_workers(procs: Processes, n: int, tag: str) -> list[subprocess.Popen]:
    return [
        procs.start(f"worker-{tag}-{i}", "worker", "--name", f"bench-{tag}-{i}", extra_env={"OMP_NUM_THREADS": "1"})
        for i in range(n)
    ]


def bench_overhead(http: httpx.Client, n: int) -> dict[str, float]:
    overheads, engine = [], []
    for _ in range(n):
        t0 = time.perf_counter()
        job_id = submit(http)
        body = wait_done(http, job_id)
        http.get(f"/v1/edits/{job_id}/result").raise_for_status()
        wall = time.perf_counter() - t0
        engine_s = body["stats"]["seconds"]["total"]
        overheads.append(wall - engine_s)
        engine.append(engine_s)
    return {
        "overhead_p50_ms": 1000 * pct(overheads, 50),
        "overhead_p99_ms": 1000 * pct(overheads, 99),
        "engine_p50_s": statistics.median(engine),
    }


async def _poll_loop(
    client: httpx.AsyncClient, path: str, until: float, out: list[float], interval: float, start: float
) -> None:
    await asyncio.sleep(start)  # spread the pollers over one interval
    while time.perf_counter() < until:
        t0 = time.perf_counter()
        response = await client.get(path)
        out.append(time.perf_counter() - t0)
        if response.status_code != 200:
            raise RuntimeError(f"poll answered {response.status_code}")
        await asyncio.sleep(max(0.0, interval - (time.perf_counter() - t0)))


async def bench_polls(base: str, job_id: str, pollers: int, seconds: float, interval: float = 0.0) -> dict[str, float]:
    """`pollers` clients each GET the status every `interval` seconds (0: back to back, a
    saturation test where latency is just queueing behind the other pollers on the same cores)."""
    latencies: list[float] = []
    limits = httpx.Limits(max_connections=pollers, max_keepalive_connections=pollers)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=30) as client:
        await client.get(f"/v1/edits/{job_id}")  # warm the connection pool path
        until = time.perf_counter() + seconds
        await asyncio.gather(
            *(
                _poll_loop(client, f"/v1/edits/{job_id}", until, latencies, interval, interval * k / pollers)
                for k in range(pollers)
            )
        )
    return {
        "poll_p50_ms": 1000 * pct(latencies, 50),
        "poll_p99_ms": 1000 * pct(latencies, 99),
        "polls_per_s": len(latencies) / seconds,
    }


def bench_throughput(http: httpx.Client, m: int) -> float:
    t0 = time.perf_counter()
    ids = [submit(http) for _ in range(m)]
    for job_id in ids:
        wait_done(http, job_id, interval=0.05)
    return m / (time.perf_counter() - t0)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--redis-url", default=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/2"))
    parser.add_argument("--jobs", type=int, default=20, help="jobs for the overhead figure")
    parser.add_argument("--pollers", type=int, default=100)
    parser.add_argument("--poll-seconds", type=float, default=5.0)
    parser.add_argument(
        "--poll-interval", type=float, default=0.5, help="seconds between one poller's polls (a client's rate)"
    )
    parser.add_argument("--throughput-jobs", type=int, default=8)
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="diffeditor-bench-"))
    queue_name = f"bench-{os.getpid()}"
    settings = Settings(REDIS_URL=args.redis_url, queue_name=queue_name, data_dir=tmp / "data", job_ttl_s=900)
    redis = Redis.from_url(args.redis_url)
    env = {k: v for k, v in os.environ.items() if not k.startswith("DIFFEDITOR_")}
    env.update(
        REDIS_URL=args.redis_url,
        DIFFEDITOR_QUEUE_NAME=queue_name,
        DIFFEDITOR_DATA_DIR=str(settings.data_dir),
        DIFFEDITOR_JOB_TTL_S="900",
        DIFFEDITOR_RATE_LIMIT_PER_MIN="100000",
        DIFFEDITOR_MAX_QUEUED_PER_KEY="1000",
        DIFFEDITOR_LOG_LEVEL="WARNING",
        HF_HUB_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
    )
    procs = Processes(env, tmp)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    rows: list[tuple[str, str]] = []
    try:
        procs.start("api", "serve", "--port", str(port))
        workers = start_workers(procs, 1, "one")
        wait_workers(redis, settings, 1)
        with httpx.Client(base_url=base, timeout=30) as http:
            for _ in range(100):
                try:
                    http.get("/healthz")
                    break
                except httpx.TransportError:
                    time.sleep(0.2)
            wait_done(http, submit(http))  # first job pays for lazy setup; not counted

            o = bench_overhead(http, args.jobs)
            rows += [
                (f"overhead p50 (submit->result minus engine), {args.jobs} jobs", f"{o['overhead_p50_ms']:.1f} ms"),
                ("overhead p99", f"{o['overhead_p99_ms']:.1f} ms"),
                ("engine total per job p50 (64x64, 4 steps)", f"{o['engine_p50_s'] * 1000:.0f} ms"),
            ]
            done_id = submit(http)
            wait_done(http, done_id)
            single = []
            for _ in range(200):
                t0 = time.perf_counter()
                http.get(f"/v1/edits/{done_id}").raise_for_status()
                single.append(time.perf_counter() - t0)
            rows += [
                ("status poll p50 / p99, 1 poller", f"{1000 * pct(single, 50):.1f} / {1000 * pct(single, 99):.1f} ms")
            ]
            for interval in (args.poll_interval, 0.0):
                p = asyncio.run(bench_polls(base, done_id, args.pollers, args.poll_seconds, interval))
                how = f"each every {interval:g} s" if interval else "back to back (saturation)"
                rows += [
                    (
                        f"status poll p50 / p99, {args.pollers} pollers {how}",
                        f"{p['poll_p50_ms']:.1f} / {p['poll_p99_ms']:.1f} ms ({p['polls_per_s']:.0f} polls/s)",
                    )
                ]

            one = bench_throughput(http, args.throughput_jobs)
            workers += start_workers(procs, 1, "two")
            wait_workers(redis, settings, 2)
            two = bench_throughput(http, args.throughput_jobs)
            rows += [
                (f"throughput, 1 worker ({args.throughput_jobs} jobs)", f"{one:.2f} jobs/s"),
                (f"throughput, 2 workers ({args.throughput_jobs} jobs)", f"{two:.2f} jobs/s"),
                ("2 workers / 1 worker", f"{two / one:.2f}x"),
            ]
    finally:
        procs.stop_all()

    width = max(len(k) for k, _ in rows)
    print(f"\ndiffeditor service benchmark ({os.cpu_count()} CPUs, demo model, tiny images)\n")
    for key, value in rows:
        print(f"  {key:<{width}}  {value:>14}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""`diffeditor submit TASK --server URL --output OUT.png ...`: one edit on a running service, through
`diffeditor.client`, with the task flags of `diffeditor edit` (`diffeditor.edit_flags`).

It submits, shows the job's progress on stderr (a redrawn bar on a terminal, a line per stage
otherwise), writes the result in the format the output's suffix names, and exits 0. Torch-free:
nothing of the engine is imported. Bad flags exit 2 with one line naming the field (as `edit`);
an input the server refuses exits 2 and any other API error 1, each in one line with its code and
field; Ctrl+C cancels the job, even one pressed while it was being submitted (the submit is
replayed with its idempotency key, which finds the job if the server had taken it).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import uuid
from pathlib import Path
from typing import TextIO

import httpx
from pydantic import ValidationError

from diffeditor.client import (
    ApiError,
    Client,
    Event,
    Job,
    ProgressEvent,
    QueuedEvent,
    StartEvent,
    WaitTimeout,
    media_type_for,
)
from diffeditor.edit_flags import attach_negative_values, fail, file_args, params_from_args, task_parser
from diffeditor.job_options import WEBHOOK_EVENTS

INPUT_STATUSES = (400, 413, 415, 422)  # the server refused the input: exit 2, as bad flags do


def _events(text: str) -> list[str]:
    names = [n.strip() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in WEBHOOK_EVENTS]
    if not names or unknown:
        raise argparse.ArgumentTypeError(f"expected some of {','.join(WEBHOOK_EVENTS)}, got {text!r}")
    return names


def _submit_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--server", metavar="URL", help="the service, e.g. http://localhost:8000 (env DIFFEDITOR_SERVER)")
    p.add_argument("--api-key", metavar="KEY", help="API key (env DIFFEDITOR_API_KEY)")
    p.add_argument("--output", required=True, type=Path, help="where to write the result (.png, .webp or .jpg)")
    p.add_argument("--webhook", metavar="URL", help="a URL the server POSTs signed job events to")
    p.add_argument("--webhook-events", type=_events, metavar="EVENTS", help="comma separated: start,progress,completed")
    p.add_argument("--deadline-s", type=float, metavar="S", help="the job expires unless done S seconds after submit")
    p.add_argument("--idempotency-key", metavar="KEY", help="resubmitting with the same key returns the same job")
    p.add_argument("--timeout", type=float, metavar="S", help="stop waiting after S seconds (the job goes on)")
    p.add_argument("--quiet", action="store_true", help="no progress on stderr")


def _parser() -> argparse.ArgumentParser:
    return task_parser("diffeditor submit", "Submit one edit to a running diffeditor service.", _submit_options)


class ProgressBar:
    """A job's progress on `stream`: one redrawn line on a terminal (stage, a bar, step/total,
    ETA), else plain lines: one per queue position and stage, and at most one every 2 s within."""

    WIDTH = 24

    def __init__(self, stream: TextIO, tty: bool | None = None) -> None:
        self.stream = stream
        self.tty = stream.isatty() if tty is None else tty
        self._last_key: tuple[object, ...] | None = None
        self._last_at = 0.0
        self._drawn = False

    def __call__(self, event: Event) -> None:
        if isinstance(event, QueuedEvent):
            self._show(("queued", event.position), f"queued (position {event.position})", force=True)
        elif isinstance(event, StartEvent):
            self._show(("start",), f"running on {event.worker or 'a worker'}", force=True)
        elif isinstance(event, ProgressEvent):
            eta = f"  ETA {event.eta_s:.0f}s" if event.eta_s is not None else ""
            done = int(self.WIDTH * event.step / event.total) if event.total else 0
            bar = f"[{'#' * done}{'.' * (self.WIDTH - done)}] " if self.tty else ""
            line = f"{event.stage:<12} {bar}{event.step}/{event.total}{eta}"
            new_stage = self._last_key is None or self._last_key[0] != event.stage
            self._show((event.stage, event.step), line, force=new_stage or event.step == event.total)

    def _show(self, key: tuple[object, ...], line: str, force: bool) -> None:
        if key == self._last_key:
            return
        now = time.monotonic()
        if self.tty:
            self.stream.write(f"\r{line}\x1b[K")
            self._drawn = True
        elif force or now - self._last_at >= 2.0:
            self.stream.write(line + "\n")
            self._last_at = now
        else:
            return
        self._last_key = key
        self.stream.flush()

    def finish(self, job: Job) -> None:
        if self._drawn:
            self.stream.write("\n")
        self.stream.write(f"{job.status}\n")
        self.stream.flush()


def _read_files(args: argparse.Namespace) -> dict[str, bytes]:
    files = {}
    for name, path in file_args(args).items():
        try:
            files[name] = Path(path).read_bytes()
        except FileNotFoundError:
            fail(name, f"file {path} does not exist")
        except OSError as exc:
            fail(name, f"cannot read {path} ({exc.__class__.__name__})")
    return files


def main(argv: list[str]) -> int:
    args = _parser().parse_args(attach_negative_values(argv))
    params = params_from_args(args)
    server = args.server or os.environ.get("DIFFEDITOR_SERVER")
    if not server:
        fail("server", "--server URL (or DIFFEDITOR_SERVER) is required")
    try:
        media = media_type_for(args.output)
    except ValueError:
        fail("output", "must end in .png, .webp or .jpg")
    files = _read_files(args)
    bar = ProgressBar(sys.stderr)
    job: Job | None = None
    # Ours when not given, so that a Ctrl+C during the upload can find the job it may have made.
    options = {
        "webhook": args.webhook,
        "webhook_events": args.webhook_events,
        "deadline_s": args.deadline_s,
        "idempotency_key": args.idempotency_key or f"cli-{uuid.uuid4().hex}",
    }
    try:
        with Client(server, args.api_key or os.environ.get("DIFFEDITOR_API_KEY")) as client:
            try:
                job = client.submit(params, files, **options)
                if not args.quiet:
                    print(f"submitted {job.id}", file=sys.stderr)
                job = client.wait(job.id, progress=None if args.quiet else bar, timeout=args.timeout)
            except KeyboardInterrupt:
                if job is None:  # stopped mid-submit: the replay answers the job the server took, if any
                    job = client.submit(params, files, **options)
                print(f"\ncanceling {job.id}", file=sys.stderr)
                client.cancel(job.id)
                return 130
            if not args.quiet:
                bar.finish(job)
            if not job.succeeded:
                e = job.error
                reason = f"{e.code}{f' (field {e.field})' if e.field else ''}: {e.message}" if e else job.status
                print(f"diffeditor submit: job {job.id} {job.status}: {reason}", file=sys.stderr)
                return 1
            data = client.result_bytes(job.id, media)
    except ValidationError as exc:  # a job option (the task's params were checked above)
        err = exc.errors()[0]
        fail(".".join(str(x) for x in err["loc"]) or "params", err["msg"])
    except ApiError as exc:
        print(f"diffeditor submit: error: {exc}", file=sys.stderr)
        return 2 if exc.status in INPUT_STATUSES else 1
    except WaitTimeout:
        assert job is not None
        print(f"diffeditor submit: job {job.id} not finished after {args.timeout:g} s (it goes on)", file=sys.stderr)
        return 1
    except httpx.HTTPError as exc:
        print(f"diffeditor submit: cannot reach {server}: {exc.__class__.__name__}: {exc}", file=sys.stderr)
        return 1
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_bytes(data)
    print(f"wrote {args.output} (job {job.id}, seed {job.params.get('seed')})")
    return 0

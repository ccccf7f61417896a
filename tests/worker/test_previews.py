"""Step previews through a real in-process worker with the fake editor: the latest preview's JPEG
under keys.preview and one `preview` event per preview; none with previews off; a Redis blip costs
a preview, not the edit."""

from __future__ import annotations

import base64
import io

from PIL import Image
from redis import Redis
from rq.job import Job

from service.jobs import events, lifecycle, previews
from service.jobs.context import JobContext
from service.jobs.ids import new_job_id
from service.jobs.status import JobStatus
from service.settings import Settings
from service.store import LocalStore
from tests.processes import free_port
from tests.worker.conftest import FakeEditor, submit
from worker.jobs import EditRunner, Runtime


def _jpeg(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    assert image.format == "JPEG"
    return image


def test_previews_are_stored_and_published(
    redis: Redis, settings: Settings, ctx: JobContext, store: LocalStore, run_burst
) -> None:
    job_id = submit(redis, settings, store)
    editor = FakeEditor(steps=5)
    run_burst(editor, preview_every=2)

    assert lifecycle.get_job(ctx, job_id).status is JobStatus.succeeded
    assert editor.preview_calls == [(2, 5), (4, 5), (5, 5)]
    sent = [e for e in events.read(ctx, job_id) if e.type == "preview"]
    assert [(e.data["step"], e.data["total"]) for e in sent] == [(2, 5), (4, 5), (5, 5)]
    for event in sent:
        assert set(event.data) == {"step", "total", "width", "height", "image"}
        head, _, body = event.data["image"].partition(",")
        assert head == "data:image/jpeg;base64"
        assert _jpeg(base64.b64decode(body)).size == (event.data["width"], event.data["height"]) == (16, 12)
    kept = previews.latest(ctx, job_id)
    assert kept is not None and (kept.step, kept.total) == (5, 5)  # the latest one only
    assert kept.jpeg == base64.b64decode(sent[-1].data["image"].partition(",")[2])
    assert 0 < redis.ttl(ctx.keys.preview(job_id)) <= settings.job_ttl_s
    types = [e.type for e in events.read(ctx, job_id)]
    assert types.index("preview") > types.index("start") and types[-1] == "completed"


def test_no_previews_when_the_setting_is_zero(
    redis: Redis, settings: Settings, ctx: JobContext, store: LocalStore, run_burst
) -> None:
    job_id = submit(redis, settings, store)
    editor = FakeEditor(steps=5)
    run_burst(editor, preview_every=0)
    assert lifecycle.get_job(ctx, job_id).status is JobStatus.succeeded
    assert editor.preview_calls == []
    assert previews.latest(ctx, job_id) is None
    assert not [e for e in events.read(ctx, job_id) if e.type == "preview"]


def test_a_redis_blip_costs_a_preview_not_the_edit(settings: Settings, store: LocalStore) -> None:
    dead = Redis(port=free_port(), socket_connect_timeout=0.5)  # nothing listens there
    runner = EditRunner(Runtime(settings=settings, redis=dead, store=store, editor=FakeEditor(), worker_name="w"))
    job = Job(new_job_id(), connection=dead)
    job.meta = {}
    runner._report_preview(job, 5, 10, Image.new("RGB", (16, 16)))  # logged, not raised


def test_a_preview_that_fails_costs_the_preview_not_the_edit(
    redis: Redis, settings: Settings, ctx: JobContext, store: LocalStore, run_burst, monkeypatch
) -> None:
    def broken(jpeg: bytes) -> str:
        raise ValueError("an encoder bug")

    monkeypatch.setattr(previews, "data_url", broken)
    job_id = submit(redis, settings, store)
    run_burst(FakeEditor(steps=5))
    view = lifecycle.get_job(ctx, job_id)
    assert view.status is JobStatus.succeeded, view.error
    assert not [e for e in events.read(ctx, job_id) if e.type == "preview"]

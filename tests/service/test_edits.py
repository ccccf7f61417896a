"""The edit lifecycle as the API sees it, without a worker: submit, poll, cancel, result answers."""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image
from redis import Redis
from rq.job import Job

from service.jobs import lifecycle
from service.jobs.context import SERIALIZER, JobContext
from service.result_media import choose_media
from service.settings import Settings
from tests.service.helpers import REDIS_URL, finish, mask_png, multipart, png, submit


def test_submit_answers_202_with_links_and_location(client: TestClient, redis: Redis, settings: Settings) -> None:
    r = submit(client, {"task": "move", "offset": [8, 0], "steps": 4, "seed": 3})
    assert r.status_code == 202, r.text
    body = r.json()
    job_id = body["id"]
    assert len(job_id) == 32 and body["status"] == "queued" and body["position"] == 0
    assert body["links"] == {
        "self": f"/v1/edits/{job_id}",
        "result": f"/v1/edits/{job_id}/result",
        "cancel": f"/v1/edits/{job_id}",
        "events": f"/v1/edits/{job_id}/events",
        "preview": f"/v1/edits/{job_id}/preview",
    }
    assert r.headers["location"] == f"/v1/edits/{job_id}"
    # Defaults filled in from diffeditor.tasks, the caller's values kept.
    assert body["params"]["seed"] == 3 and body["params"]["w_edit"] == 4.0 and body["params"]["task"] == "move"
    assert lifecycle.queue_depth(JobContext(redis, settings)) == 1


def test_inputs_are_stored_as_png(client: TestClient) -> None:
    files = {"image": png(fmt="JPEG"), "mask": mask_png(), "image_prompt": png((30, 20), fmt="WEBP")}
    r = submit(client, files=files)
    assert r.status_code == 202, r.text
    store = client.app.state.store
    job_id = r.json()["id"]
    assert sorted(store.input_names(job_id)) == ["image", "image_prompt", "mask"]
    for name in ("image", "mask", "image_prompt"):
        data = store.get_input(job_id, name)
        assert data is not None and data.startswith(b"\x89PNG\r\n\x1a\n")
    mask = Image.open(io.BytesIO(store.get_input(job_id, "mask")))
    assert mask.mode == "L" and set(np.unique(np.asarray(mask)).tolist()) == {0, 255}


def test_exif_orientation_is_applied_before_the_mask_check(client: TestClient) -> None:
    img = Image.new("RGB", (64, 48), (30, 60, 90))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90°: displayed as 48 wide, 64 high
    buf = io.BytesIO()
    img.save(buf, format="JPEG", exif=exif)
    rotated = buf.getvalue()
    params = {"task": "move", "offset": [4, 0], "steps": 4}
    bad = client.post("/v1/edits", **multipart(params, {"image": rotated, "mask": mask_png((64, 48))}))
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "mask_size_mismatch"
    good = client.post("/v1/edits", **multipart(params, {"image": rotated, "mask": mask_png((48, 64))}))
    assert good.status_code == 202, good.text
    stored = client.app.state.store.get_input(good.json()["id"], "image")
    assert Image.open(io.BytesIO(stored)).size == (48, 64)


def test_every_task_is_accepted(client: TestClient) -> None:
    cases = {
        "move": ({"offset": [5, 5], "scale": 1.2}, {"image": png(), "mask": mask_png(), "region_mask": mask_png()}),
        "drag": ({"points": [[10, 10, 20, 20]]}, {"image": png(), "mask": mask_png()}),
        "landmark": ({"points": [[10, 10, 12, 12], [30, 30, 31, 29]]}, {"image": png()}),
        "appearance": (
            {},
            {"image": png(), "mask": mask_png(), "reference": png((32, 32)), "reference_mask": mask_png((32, 32))},
        ),
        "paste": (
            {"offset": [10, -5], "scale": 0.8},
            {"image": png(), "reference": png((32, 32)), "reference_mask": mask_png((32, 32))},
        ),
    }
    for task, (params, files) in cases.items():
        r = client.post("/v1/edits", **multipart({"task": task, "steps": 4, **params}, files))
        assert r.status_code == 202, (task, r.text)
        assert r.json()["task"] == task


def test_poll_shows_queue_position(client: TestClient) -> None:
    ids = [submit(client).json()["id"] for _ in range(3)]
    positions = [client.get(f"/v1/edits/{i}").json()["position"] for i in ids]
    assert positions == [0, 1, 2]


def test_cancel_a_queued_job(client: TestClient, redis: Redis, settings: Settings) -> None:
    job_id = submit(client).json()["id"]
    r = client.delete(f"/v1/edits/{job_id}")
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "canceled" and r.json()["error"]["code"] == "canceled"
    assert client.get(f"/v1/edits/{job_id}").json()["status"] == "canceled"
    assert lifecycle.queue_depth(JobContext(redis, settings)) == 0
    again = client.delete(f"/v1/edits/{job_id}")
    assert again.status_code == 409 and again.json()["error"]["code"] == "already_finished"
    assert again.json()["error"]["message"] == "the job was already canceled; nothing to cancel"
    result = client.get(f"/v1/edits/{job_id}/result")
    assert result.status_code == 409 and result.json()["error"]["code"] == "job_canceled"


def test_result_is_409_while_queued(client: TestClient) -> None:
    job_id = submit(client).json()["id"]
    r = client.get(f"/v1/edits/{job_id}/result")
    assert r.status_code == 409
    assert r.json()["error"]["code"] == "not_finished" and "queued" in r.json()["error"]["message"]


@pytest.mark.parametrize("path", ["/v1/edits/{id}", "/v1/edits/{id}/result"])
@pytest.mark.parametrize("job_id", ["0" * 32, "not-an-id", "../../etc/passwd", "A" * 32])
def test_unknown_ids_are_404(client: TestClient, path: str, job_id: str) -> None:
    r = client.get(path.replace("{id}", job_id))
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
    assert client.delete(f"/v1/edits/{job_id}").status_code == 404


@pytest.mark.parametrize(
    ("accept", "media", "fmt"),
    [
        (None, "image/png", "PNG"),
        ("image/png", "image/png", "PNG"),
        ("image/webp", "image/webp", "WEBP"),
        ("image/jpeg", "image/jpeg", "JPEG"),
        ("*/*", "image/png", "PNG"),
        ("image/*;q=0.5, image/webp", "image/webp", "WEBP"),
        ("image/png;q=0.1, image/jpeg;q=0.9", "image/jpeg", "JPEG"),
        ("text/html, image/*;q=0.8", "image/png", "PNG"),
    ],
)
def test_result_by_accept(client: TestClient, redis: Redis, accept: str | None, media: str, fmt: str) -> None:
    job_id = submit(client).json()["id"]
    finish(redis, client, job_id)
    assert client.get(f"/v1/edits/{job_id}").json()["status"] == "succeeded"
    r = client.get(f"/v1/edits/{job_id}/result", headers={"Accept": accept} if accept else {})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == media
    img = Image.open(io.BytesIO(r.content))
    assert img.format == fmt and img.size == (40, 30)


@pytest.mark.parametrize("accept", ["image/gif", "text/html", "image/png;q=0, image/webp;q=0, image/jpeg;q=0"])
def test_result_unsupported_accept_is_406(client: TestClient, redis: Redis, accept: str) -> None:
    job_id = submit(client).json()["id"]
    finish(redis, client, job_id)
    r = client.get(f"/v1/edits/{job_id}/result", headers={"Accept": accept})
    assert r.status_code == 406 and r.json()["error"]["code"] == "not_acceptable"


def test_result_gone_from_the_store_is_404(client: TestClient, redis: Redis) -> None:
    job_id = submit(client).json()["id"]
    finish(redis, client, job_id)
    client.app.state.store.delete(job_id)
    r = client.get(f"/v1/edits/{job_id}/result")
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"


def test_choose_media_prefers_png_on_ties() -> None:
    assert choose_media("image/webp, image/png") == "image/png"
    assert choose_media("") == "image/png"
    assert choose_media("image/png;q=bogus") is None


def test_failed_job_shows_its_error(client: TestClient, redis: Redis) -> None:
    job_id = submit(client).json()["id"]
    job = Job.fetch(job_id, connection=redis, serializer=SERIALIZER)
    job.meta["error"] = {"code": "out_of_memory", "message": "the GPU ran out of memory", "field": None}
    job.save_meta()
    redis.hset(Job.key_for(job_id), "status", "failed")
    body = client.get(f"/v1/edits/{job_id}").json()
    assert body["status"] == "failed" and body["error"]["code"] == "out_of_memory"
    r = client.get(f"/v1/edits/{job_id}/result")
    assert r.status_code == 409 and r.json()["error"]["code"] == "job_failed"


def test_method_not_allowed_has_the_error_shape(client: TestClient) -> None:
    r = client.put("/v1/edits")
    assert r.status_code == 405 and r.json()["error"]["code"] == "method_not_allowed"


def test_unexpected_errors_are_500_without_traceback(
    client: TestClient, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def boom(*_: object, **__: object) -> None:
        raise RuntimeError("secret internals")

    monkeypatch.setattr(lifecycle, "get_job", boom)
    r = client.get(f"/v1/edits/{'a' * 32}")
    assert r.status_code == 500
    assert r.json() == {
        "error": {"code": "internal_error", "message": "internal error; it has been logged", "field": None}
    }
    assert "secret internals" not in r.text and "Traceback" not in r.text


def test_api_process_never_imports_torch(make_settings: Callable[..., Settings]) -> None:
    import subprocess
    import sys

    code = (
        "import sys; from service.app import create_app; from service.settings import Settings; "
        f"create_app(Settings(redis_url={REDIS_URL!r}, data_dir={str(make_settings().data_dir)!r})); "
        "assert 'torch' not in sys.modules, 'torch imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_body_without_content_length_is_counted(make_client: Callable[..., TestClient]) -> None:
    client = make_client(max_request_bytes=50_000, max_upload_bytes=50_000)
    boundary = "b0undary"
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="image"; filename="a.png"\r\n'
        "Content-Type: image/png\r\n\r\n"
    ).encode()

    def chunks() -> Iterator[bytes]:  # a generator body goes out chunked, with no Content-Length
        yield head
        for _ in range(100):
            yield b"\0" * 10_000

    r = client.post(
        "/v1/edits", content=chunks(), headers={"Content-Type": f"multipart/form-data; boundary={boundary}"}
    )
    assert r.status_code == 413 and r.json()["error"]["code"] == "payload_too_large"


def test_presigned_results_redirect(client: TestClient, redis: Redis, monkeypatch: pytest.MonkeyPatch) -> None:
    job_id = submit(client).json()["id"]
    finish(redis, client, job_id)
    url = f"https://s3.example.test/bucket/{job_id}/result.png?X-Amz-Signature=abc"
    monkeypatch.setattr(client.app.state.store, "result_url", lambda _id: url)
    assert client.get(f"/v1/edits/{job_id}").json()["result_url"] == url
    r = client.get(f"/v1/edits/{job_id}/result", follow_redirects=False)
    assert r.status_code == 307 and r.headers["location"] == url
    webp = client.get(f"/v1/edits/{job_id}/result", headers={"Accept": "image/webp"}, follow_redirects=False)
    assert webp.status_code == 200 and webp.headers["content-type"] == "image/webp"  # converted here


def test_settings_can_be_overridden_per_app(client: TestClient, make_settings: Callable[..., Settings]) -> None:
    from service.settings import get_settings

    client.app.dependency_overrides[get_settings] = lambda: make_settings(max_steps=10)
    r = submit(client, {"task": "move", "offset": [8, 0], "steps": 20})
    assert r.status_code == 422 and r.json()["error"]["field"] == "steps"
    assert client.get("/v1/info").json()["limits"]["max_steps"] == 10

"""The edit taking shape: the page follows the edit on show on its event stream (read with fetch(),
so that the API key goes with it) and shows its step previews and progress as they come; a stream
that ends with `completed` needs no polling at all. The events come from FakeJobs (the demo worker
does not hold still long enough to look at a step preview), and once from the real server."""

from __future__ import annotations

import base64
import io

from PIL import Image
from playwright.sync_api import Page, expect

from tests.web.editor_page import (
    choose_task,
    click_image,
    main_frame,
    make_png,
    open_editor,
    pick_tool,
    set_steps,
    submit,
    upload_image,
    wait_status,
)
from tests.web.fake_jobs import FakeJobs, iso, job_record


def _preview_url(colour: tuple[int, int, int], size: tuple[int, int] = (32, 24)) -> str:
    buf = io.BytesIO()
    Image.new("RGB", size, colour).save(buf, format="JPEG", quality=75)
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _preview(step: int, colour: tuple[int, int, int]) -> tuple[str, dict]:
    return "preview", {"step": step, "total": 50, "width": 32, "height": 24, "image": _preview_url(colour)}


def _progress(step: int) -> tuple[str, dict]:
    return "progress", {"status": "running", "stage": "sampling", "step": step, "total": 50, "eta_s": None}


def _submit(page: Page, fake: FakeJobs) -> str:
    page.click("#submit")
    expect(page.locator("#job")).to_be_visible()
    expect(page.locator("#job-id")).to_have_attribute("title", fake.last_id)
    return fake.last_id


def test_step_previews_from_the_event_stream_show_while_the_edit_runs(page: Page) -> None:
    fake = FakeJobs(page)
    fake.stream = [
        ("start", {"status": "running", "worker": "w"}),
        _progress(5),
        _preview(5, (200, 30, 30)),
        _progress(10),
        _preview(10, (30, 30, 200)),
    ]
    open_editor(page)
    upload_image(page, make_png())
    job_id = _submit(page, fake)
    # The stream ends there (no `completed`): polling takes over and sees the job still running.
    fake.set(job_id, "running", started_at=iso(3), progress={"stage": "sampling", "step": 10, "total": 50})

    figure = page.locator("#job-preview")
    expect(figure).to_be_visible()
    expect(figure).to_contain_text("Step 10 of 50")
    image = page.locator("#job-preview-image")
    expect(image).to_have_attribute("src", fake.stream[-1][1]["image"])  # the latest of the two
    page.wait_for_function("() => document.getElementById('job-preview-image').naturalWidth === 32")
    expect(page.locator("#job-status")).to_have_text("Sampling: step 10 of 50")
    assert fake.streams_opened == 1

    fake.set(job_id, "succeeded", started_at=iso(3), ended_at=iso(), progress=None)
    expect(page.locator("#result")).to_be_visible()
    expect(figure).to_be_hidden()  # the result replaces the preview


def test_a_stream_that_ends_with_completed_needs_no_polling(page: Page) -> None:
    fake = FakeJobs(page)
    open_editor(page)
    upload_image(page, make_png())
    job_id = f"{1:032x}"  # the first job FakeJobs makes
    final = job_record(job_id, "succeeded", started_at=iso(2), ended_at=iso())
    fake.stream = [("start", {"status": "running", "worker": "w"}), _preview(50, (10, 200, 10)), ("completed", final)]
    assert _submit(page, fake) == job_id
    expect(page.locator("#result")).to_be_visible()
    expect(page.locator("#job-status")).to_contain_text("Done")
    expect(page.locator("#job-preview")).to_be_hidden()
    page.wait_for_timeout(600)  # longer than a poll's interval
    assert fake.polls == 0 and fake.streams_opened == 1


def test_a_real_edit_is_followed_on_its_stream_with_its_previews(page: Page) -> None:
    """The embedded server's worker publishes previews (every 5 steps and at the last): a 4-step
    edit sends one, at step 4, and the page reads it off the stream without polling the status."""
    requests: list[str] = []
    page.on("request", lambda r: requests.append(f"{r.method} {r.url}"))
    open_editor(page)
    choose_task(page, "landmark")
    upload_image(page, make_png(64, 48))
    pick_tool(page, "points")
    click_image(page, main_frame(page), 0.3, 0.5)
    click_image(page, main_frame(page), 0.55, 0.45)
    set_steps(page, 4)
    job_id = submit(page)
    wait_status(page, "succeeded")
    kept = page.evaluate("() => window.diffeditor.state.livePreview")
    assert kept["jobId"] == job_id and (kept["step"], kept["total"]) == (4, 4)
    assert kept["url"].startswith("data:image/jpeg;base64,")
    assert [r for r in requests if r.endswith(f"/v1/edits/{job_id}/events")]
    assert not [r for r in requests if r.startswith("GET ") and r.endswith(f"/v1/edits/{job_id}")]  # no polls

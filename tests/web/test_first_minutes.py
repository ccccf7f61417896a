"""The editor's first minutes (issue 11): errors that go when their input changes, Run off while
an edit is under way, one record of a job for the panel and the recent list, a task switch that
starts clean, a scale slider centred on 1×, elapsed time and ETA, the working size from /v1/info.

States the demo worker passes too quickly to look at (step 12 of 50, an ETA, a slow step) come
from FakeJobs, which answers the edit endpoints in the browser; the rest is the real server."""

from __future__ import annotations

import math
import re

import httpx
from playwright.sync_api import Page, Route, expect

from tests.web.editor_page import (
    CAPTURE_SUBMIT,
    choose_task,
    main_frame,
    make_png,
    open_editor,
    paint_disc_mask,
    pick_tool,
    sent_params,
    set_steps,
    upload,
    upload_image,
    wait_status,
)
from tests.web.fake_jobs import FakeJobs, iso

RUNNING_12_OF_50 = {"stage": "sampling", "step": 12, "total": 50, "eta_s": None}


def _submit_fake(page: Page, fake: FakeJobs) -> str:
    count = len(fake.submitted)
    page.click("#submit")
    expect(page.locator("#job")).to_be_visible()
    page.wait_for_function("(n) => document.querySelectorAll('#recent-list li').length >= n", arg=count + 1)
    assert len(fake.submitted) == count + 1
    expect(page.locator("#job-id")).to_have_attribute("title", fake.last_id)
    return fake.last_id


def test_a_stale_error_goes_when_its_input_changes(page: Page) -> None:
    open_editor(page)
    choose_task(page, "move")
    # A bad file, then a good one: neither the upload's error nor its copy beside Run stays.
    upload(page, "#image-file", b"this is not a picture", "notes.png")
    expect(page.locator("#image-error")).to_contain_text("cannot be opened")
    expect(page.locator("#form-error")).to_contain_text("Image")
    upload_image(page, make_png())
    expect(page.locator("#image-error")).to_have_text("")
    expect(page.locator("#form-error")).to_have_text("")

    # An empty mask, then painting it: the mask's error goes.
    page.fill("#offset-dx", "10")
    set_steps(page, 4)
    page.click("#submit")
    expect(page.locator("#mask-error")).to_contain_text("mask is empty")
    expect(page.locator("#form-error")).to_contain_text("Mask")
    pick_tool(page, "brush")
    paint_disc_mask(page, main_frame(page))
    expect(page.locator("#mask-error")).to_have_text("")
    expect(page.locator("#form-error")).to_have_text("")

    # A typed field's error goes when it is typed in.
    page.fill("#steps", "1")
    page.click("#submit")
    expect(page.locator("#steps-error")).not_to_have_text("")
    page.fill("#steps", "4")
    expect(page.locator("#steps-error")).to_have_text("")
    expect(page.locator("#form-error")).to_have_text("")

    # A task switch: the old task's errors go.
    choose_task(page, "drag")
    page.click("#submit")
    expect(page.locator("#points-error")).to_contain_text("handle")
    expect(page.locator("#form-error")).to_contain_text("Points")
    choose_task(page, "landmark")
    expect(page.locator("#form-error")).to_have_text("")
    expect(page.locator("#points-error")).to_have_text("")
    expect(page.locator("#points-list")).not_to_have_class(re.compile("is-invalid"))

    # A sample picked: it replaces every input, so every error goes.
    page.click("#submit")
    expect(page.locator("#points-error")).to_contain_text("handle")
    page.locator("#sample-list button").first.click()
    expect(page.locator("#samples-status")).to_contain_text("Loaded")
    expect(page.locator("#form-error")).to_have_text("")
    expect(page.locator("#points-error")).to_have_text("")


def test_run_is_off_while_the_edit_is_under_way_and_both_views_agree(page: Page) -> None:
    fake = FakeJobs(page)
    open_editor(page)
    upload_image(page, make_png())
    job_id = _submit_fake(page, fake)
    run = page.locator("#submit")
    expect(run).to_be_disabled()
    expect(page.locator("#submit-hint")).to_contain_text("under way")
    row = page.locator(f'#recent-list li[data-job-id="{job_id}"] .recent-status')
    expect(row).to_contain_text("queued")

    # Step 12 of 50 in the panel is step 12 of 50 in the recent list, not "queued".
    fake.set(job_id, "running", started_at=iso(3), progress=RUNNING_12_OF_50)
    expect(page.locator("#job-status")).to_have_text("Sampling: step 12 of 50")
    expect(row).to_have_text("running · step 12 of 50")
    run.click(force=True)  # a click on the disabled button queues nothing
    page.wait_for_timeout(300)
    assert len(fake.submitted) == 1
    expect(run).to_be_disabled()

    # It ends (failed): Run is back, and both views say so.
    fake.set(job_id, "failed", started_at=iso(3), ended_at=iso(), error={"code": "oom", "message": "out of memory"})
    wait_status(page, "failed", timeout_ms=5_000)
    expect(row).to_have_text("failed")
    expect(page.locator("#job-error")).to_have_text("Out of memory")
    expect(run).to_be_enabled()
    expect(page.locator("#submit-hint")).to_have_text("")

    # Canceled from the page: Run is back.
    second = _submit_fake(page, fake)
    expect(run).to_be_disabled()
    page.click("#job-cancel")
    wait_status(page, "canceled", timeout_ms=5_000)
    expect(page.locator(f'#recent-list li[data-job-id="{second}"] .recent-status')).to_have_text("canceled")
    expect(run).to_be_enabled()

    # Gone from the server (a poll answers 404): the page can no longer follow it, Run is back.
    third = _submit_fake(page, fake)
    expect(run).to_be_disabled()
    del fake.jobs[third]
    wait_status(page, "expired", timeout_ms=5_000)
    expect(page.locator("#job-status")).to_contain_text("expired")
    expect(page.locator(f'#recent-list li[data-job-id="{third}"] .recent-status')).to_have_text("expired")
    expect(run).to_be_enabled()


def test_a_task_switch_clears_the_old_tasks_result_and_panel(page: Page) -> None:
    fake = FakeJobs(page)
    open_editor(page)
    choose_task(page, "move")
    upload_image(page, make_png())
    done = _submit_fake(page, fake)
    fake.set(done, "succeeded", started_at=iso(2), ended_at=iso())
    expect(page.locator("#result")).to_be_visible()
    choose_task(page, "drag")
    expect(page.locator("#result")).to_be_hidden()
    expect(page.locator("#job")).to_be_hidden()
    choose_task(page, "move")
    expect(page.locator("#result")).to_be_hidden()

    # An edit under way when the task changes: off the screen, Run free for the new task, and
    # its row in the recent list still follows it to the end.
    running = _submit_fake(page, fake)
    fake.set(running, "running", started_at=iso(1), progress=RUNNING_12_OF_50)
    expect(page.locator("#job-status")).to_contain_text("step 12 of 50")
    choose_task(page, "landmark")
    expect(page.locator("#job")).to_be_hidden()
    expect(page.locator("#submit")).to_be_enabled()
    row = page.locator(f'#recent-list li[data-job-id="{running}"] .recent-status')
    expect(row).to_have_text("running · step 12 of 50")
    fake.set(running, "succeeded", started_at=iso(1), ended_at=iso())
    expect(row).to_have_text("succeeded", timeout=10_000)
    expect(page.locator("#result")).to_be_hidden()
    expect(page.locator("#job")).to_be_hidden()


def test_elapsed_time_ticks_and_the_eta_shows(page: Page) -> None:
    fake = FakeJobs(page)
    open_editor(page)
    upload_image(page, make_png())
    job_id = _submit_fake(page, fake)
    clock = page.locator("#job-time")
    expect(clock).to_contain_text("Waiting")

    # Running, no ETA yet: the elapsed time only.
    fake.set(job_id, "running", started_at=iso(5), progress={"stage": "inversion", "step": 1, "total": 10})
    expect(clock).to_have_text(re.compile(r"^\d+ s elapsed$"))
    # With the worker's ETA.
    progress = {"stage": "sampling", "step": 3, "total": 10, "eta_s": 12.0}
    fake.set(job_id, "running", started_at=iso(5), progress=progress)
    expect(clock).to_contain_text("about 12 s left")

    # No new status for a while (a slow step): both still move, once a second.
    fake.hold()
    for _ in range(50):  # until the next poll reaches the hold
        if fake.held:
            break
        page.wait_for_timeout(100)
    assert fake.held, "no poll was held"
    m = re.fullmatch(r"(\d+) s elapsed · about (\d+) s left", clock.text_content() or "")
    assert m, clock.text_content()
    page.wait_for_function(
        """([e1, l1]) => {
            const m = document.getElementById('job-time').textContent.match(/^(\\d+) s elapsed · about (\\d+) s left$/);
            return m && Number(m[1]) >= e1 + 2 && Number(m[2]) <= l1 - 2;
        }""",
        arg=[int(m[1]), int(m[2])],
        timeout=8_000,
    )
    assert len(fake.held) == 1, "a status came through: the clock was not moving on its own"

    # It ends: the clock stops and goes.
    fake.set(job_id, "canceled", started_at=iso(8), ended_at=iso())
    fake.release()
    wait_status(page, "canceled", timeout_ms=5_000)
    expect(clock).to_have_text("")
    page.wait_for_timeout(1_200)
    expect(clock).to_have_text("")


def test_a_status_read_again_is_not_read_out_again(page: Page) -> None:
    """The page re-renders at every poll and every second; a live region keeps its text node
    while its words stay the same, so a screen reader does not repeat them."""
    fake = FakeJobs(page)
    open_editor(page)
    upload_image(page, make_png())
    job_id = _submit_fake(page, fake)
    fake.set(job_id, "running", started_at=iso(5), progress=RUNNING_12_OF_50)
    expect(page.locator("#job-status")).to_have_text("Sampling: step 12 of 50")
    page.evaluate(
        """() => {
        window.__liveWrites = [];
        for (const el of document.querySelectorAll('[role=status], [role=alert], [aria-live]'))
            new MutationObserver(() => window.__liveWrites.push(el.id))
                .observe(el, {childList: true, characterData: true, subtree: true});
    }"""
    )
    page.wait_for_timeout(2_000)  # about five polls answered with the same record, two clock ticks
    assert page.evaluate("() => window.__liveWrites") == []
    expect(page.locator("#job-time")).to_contain_text("elapsed")


def test_scale_slider_is_centred_on_one_and_sends_the_factor(page: Page, server: str) -> None:
    tasks = httpx.get(f"{server}/v1/tasks", timeout=10).json()["tasks"]
    scale = next(t for t in tasks if t["name"] == "move")["params_schema"]["properties"]["scale"]
    assert scale["exclusiveMinimum"] == 0 and scale["maximum"] == 10 and scale["default"] == 1

    open_editor(page)
    page.evaluate(CAPTURE_SUBMIT)
    choose_task(page, "move")
    upload_image(page, make_png())
    slider = page.locator("#scale-range")

    def thumb() -> float:
        return float(slider.evaluate("r => (r.valueAsNumber - r.min) / (r.max - r.min)"))

    assert abs(thumb() - 0.5) < 1e-6, "1× is not in the middle of the track"
    expect(page.locator("#scale-out")).to_have_text("1.00")
    slider.focus()
    page.keyboard.press("End")
    expect(page.locator("#scale")).to_have_value("10")  # the schema's maximum
    expect(page.locator("#scale-out")).to_have_text("10.00")
    page.keyboard.press("Home")
    expect(page.locator("#scale")).to_have_value("0.1")
    page.keyboard.press("ArrowRight")  # the ends do not trap the thumb
    assert thumb() > 0
    slider.fill("0.3")  # log10(2): halfway between 1× and 10× in the slider's terms
    expect(page.locator("#scale")).to_have_value("2")
    expect(slider).to_have_attribute("aria-valuetext", "2.00×")

    page.fill("#scale", "4")
    assert abs(float(slider.input_value()) - math.log10(4)) < 0.01
    expect(page.locator("#scale-out")).to_have_text("4.00")
    page.click("#submit")
    expect(page.locator("#form-error")).to_contain_text("queued in this test")
    assert sent_params(page)["scale"] == 4  # the real factor, not the slider's logarithm


def _info_with(default_resolution: int | None):
    def handler(route: Route) -> None:
        resp = route.fetch()
        body = resp.json()
        body["default_resolution"] = default_resolution
        route.fulfill(response=resp, json=body)

    return handler


def test_working_size_starts_at_the_servers_default(page: Page, server: str) -> None:
    # The real server: the demo workers' 128, read from /v1/info.
    info = httpx.get(f"{server}/v1/info", timeout=10).json()
    assert info["default_resolution"] == 128
    open_editor(page)
    page.click("#advanced summary")
    expect(page.locator("#param-max_resolution")).to_have_value("128")

    # Whatever /v1/info says is the start (the page knows no model's size itself)…
    page.route("**/v1/info", _info_with(320))
    page.reload()
    expect(page.locator("#server-status")).to_contain_text("Connected")
    page.click("#advanced summary")
    expect(page.locator("#param-max_resolution")).to_have_value("320")

    # …and without it, the schema's default; none there either: empty, the server picks.
    def tasks_without_default(route: Route) -> None:
        resp = route.fetch()
        body = resp.json()
        for t in body["tasks"]:
            t["params_schema"]["properties"]["max_resolution"]["default"] = None
        route.fulfill(response=resp, json=body)

    page.unroute("**/v1/info")
    page.route("**/v1/info", _info_with(None))
    page.route("**/v1/tasks", tasks_without_default)
    page.reload()
    expect(page.locator("#server-status")).to_contain_text("Connected")
    page.click("#advanced summary")
    field = page.locator("#param-max_resolution")
    expect(field).to_have_value("")
    expect(field).to_have_attribute("placeholder", "server default")
    page.evaluate(CAPTURE_SUBMIT)
    upload_image(page, make_png())
    page.click("#submit")
    expect(page.locator("#form-error")).to_contain_text("queued in this test")
    assert "max_resolution" not in sent_params(page)

"""The editor page end to end in headless Chromium against `diffeditor serve` on the demo model:
every task from upload to a downloaded result, the sample scenes, mask uploads, field errors next
to their fields, cancel, the API-key flow, labels and keyboard use, and the narrow layout.
Screenshots go to test-artifacts/web/."""

from __future__ import annotations

import hashlib
import io
import json
import time
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image
from playwright.sync_api import Page, Route, expect

from tests.web.editor_page import (
    CAPTURE_SUBMIT,
    choose_task,
    click_image,
    drag_mouse,
    main_frame,
    make_png,
    open_editor,
    page_result_sha256,
    paint_disc_mask,
    pick_tool,
    record_status,
    ref_frame,
    set_steps,
    status_log,
    submit,
    upload,
    upload_image,
    upload_reference,
    wait_status,
)

STEPS = 4  # the least the API takes: the algorithm is not under test here


def mark_edit(page: Page, task: str) -> None:
    """The task's own inputs, by mouse: mask, points, object drag, reference and its mask."""
    frame = main_frame(page)
    if task in ("move", "drag", "appearance"):
        pick_tool(page, "brush")
        paint_disc_mask(page, frame)
        expect(page.locator("#mask-coverage")).to_contain_text("Mask covers")
    if task == "move":
        pick_tool(page, "move")
        drag_mouse(page, frame, [(0.33, 0.5), (0.45, 0.55), (0.6, 0.55)])
        dx = int(page.input_value("#offset-dx"))
        assert dx > 10, f"dragging the object set dx={dx}"
    if task in ("drag", "landmark"):
        pick_tool(page, "points")
        click_image(page, frame, 0.3, 0.5)
        click_image(page, frame, 0.55, 0.45)
        expect(page.locator("#points-list li")).to_have_count(1)
    if task in ("appearance", "paste"):
        upload_reference(page, make_png(80, 64, hue=90))
        paint_disc_mask(page, ref_frame(page))
    if task == "paste":
        pick_tool(page, "move")
        drag_mouse(page, frame, [(0.5, 0.5), (0.6, 0.45)])
        assert int(page.input_value("#offset-dx")) > 0


@pytest.mark.parametrize("task", ["move", "drag", "landmark", "appearance", "paste"])
def test_each_task_from_upload_to_result(page: Page, server: str, artifacts: Path, task: str) -> None:
    open_editor(page)
    expect(page.locator("#demo-notice")).to_be_visible()
    choose_task(page, task)
    upload_image(page, make_png(96, 80))
    mark_edit(page, task)
    set_steps(page, STEPS)
    page.screenshot(path=artifacts / f"{task}-1280x800-marked.png", full_page=True)

    record_status(page)
    job_id = submit(page)
    wait_status(page, "succeeded")
    seen = status_log(page)
    assert any(s.startswith(("Queued", "Running")) or " of " in s for s in seen), seen
    progress = page.locator("#job-progress")
    assert progress.get_attribute("value") == progress.get_attribute("max"), "progress bar not full when done"

    # The page shows the result beside the original, and it is the image the API returns.
    result = page.locator("#result-image")
    expect(result).to_be_visible()
    assert page.evaluate("() => document.getElementById('result-image').naturalWidth") > 0
    expect(page.locator("#result-original")).to_be_visible()
    expect(page.locator("#compare-range")).to_be_visible()
    api = httpx.get(f"{server}/v1/edits/{job_id}/result", timeout=10)
    assert api.status_code == 200 and api.headers["content-type"] == "image/png"
    assert page_result_sha256(page) == hashlib.sha256(api.content).hexdigest()
    record = httpx.get(f"{server}/v1/edits/{job_id}", timeout=10).json()
    assert record["status"] == "succeeded" and record["task"] == task
    assert record["params"]["steps"] == STEPS and isinstance(record["params"]["seed"], int)
    expect(page.locator("#result-meta")).to_contain_text(str(record["params"]["seed"]))
    expect(page.locator("#result-download")).to_have_attribute("download", f"diffeditor-{task}-{job_id[:8]}.png")
    expect(page.locator(f'#recent-list li[data-job-id="{job_id}"]')).to_contain_text("succeeded")
    page.screenshot(path=artifacts / f"{task}-1280x800-result.png", full_page=True)

    # Narrow screen: nothing wider than the viewport.
    page.set_viewport_size({"width": 390, "height": 844})
    page.wait_for_timeout(100)  # one layout pass after the resize
    overflow = page.evaluate("() => document.documentElement.scrollWidth")
    assert overflow <= 390, f"page is {overflow}px wide on a 390px screen"
    page.screenshot(path=artifacts / f"{task}-390x844-result.png", full_page=True)


def test_edit_the_result_and_download(page: Page, server: str) -> None:
    open_editor(page)
    choose_task(page, "landmark")
    upload_image(page, make_png(64, 48))
    mark_edit(page, "landmark")
    set_steps(page, STEPS)
    submit(page)
    wait_status(page, "succeeded")
    page.wait_for_function(
        "() => { const i = document.getElementById('result-image'); return i.complete && i.naturalWidth > 0; }"
    )
    size = page.evaluate(
        "() => [document.getElementById('result-image').naturalWidth, document.getElementById('result-image').naturalHeight]"
    )
    assert size == [64, 48]  # the result comes back at the input size

    with page.expect_download() as dl:
        page.click("#result-download")
    data = Path(dl.value.path()).read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"

    page.click("#result-edit")
    expect(page.locator("#image-name")).to_contain_text(f"result.png · {size[0]}×{size[1]}")
    expect(page.locator("#points-list li")).to_have_count(0)  # a new edit starts clean
    page.click("#result-seed")
    expect(page.locator("#seed")).to_be_enabled()
    assert page.input_value("#seed") != ""


def test_drag_without_points_shows_the_error_at_the_points(page: Page) -> None:
    open_editor(page)
    choose_task(page, "drag")
    upload_image(page, make_png())
    pick_tool(page, "brush")
    paint_disc_mask(page, main_frame(page))
    set_steps(page, STEPS)
    page.click("#submit")
    expect(page.locator("#points-error")).to_contain_text("handle")
    expect(page.locator("#points-list")).to_have_class("points-list is-invalid")
    expect(page.locator("#form-error")).to_contain_text("Points")
    expect(page.locator("#job")).to_be_hidden()


def test_empty_mask_shows_the_error_at_the_mask(page: Page) -> None:
    open_editor(page)
    choose_task(page, "move")
    upload_image(page, make_png())
    page.fill("#offset-dx", "10")
    set_steps(page, STEPS)
    page.click("#submit")
    expect(page.locator("#mask-error")).to_contain_text("mask is empty")


def test_typed_point_outside_the_image_marks_that_pair(page: Page) -> None:
    """Keyboard path for points: add a pair with the button, type coordinates."""
    open_editor(page)
    choose_task(page, "landmark")
    upload_image(page, make_png(64, 64))
    page.click("#points-add")
    page.fill("#point-0-2", "500")
    set_steps(page, STEPS)
    page.click("#submit")
    expect(page.locator("#points-error")).to_contain_text("outside")
    expect(page.locator('#points-list li[data-index="0"]')).to_have_class("is-invalid")


def test_missing_image_is_reported_at_the_upload(page: Page) -> None:
    open_editor(page)
    choose_task(page, "landmark")
    page.click("#points-add")  # refused without an image: it says so at the points
    expect(page.locator("#points-error")).to_contain_text("Upload an image first")
    page.evaluate("() => window.diffeditor.state.points.push([1, 1, 2, 2])")
    page.click("#submit")
    expect(page.locator("#image-error")).to_contain_text("Choose an image")


def _submit_by_api(server: str, steps: int) -> str:
    """A long move edit sent by a script, to keep the one worker busy."""
    size = (256, 256)
    mask = Image.new("L", size, 0)
    mask.paste(255, (60, 100, 140, 160))
    buf = io.BytesIO()
    mask.save(buf, "PNG")
    params = {"task": "move", "offset": [30, 0], "steps": steps, "max_resolution": 256}
    files = {"image": ("image.png", make_png(*size), "image/png"), "mask": ("mask.png", buf.getvalue(), "image/png")}
    r = httpx.post(f"{server}/v1/edits", data={"params": json.dumps(params)}, files=files, timeout=30)
    assert r.status_code == 202, r.text
    return str(r.json()["id"])


def _wait_api_status(server: str, job_id: str, status: str, timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    while (now := httpx.get(f"{server}/v1/edits/{job_id}", timeout=10).json()["status"]) != status:
        assert time.monotonic() < deadline, f"{job_id} is {now}, not {status}"
        time.sleep(0.2)


def test_cancel_a_queued_and_a_running_edit(page: Page, server: str) -> None:
    """With Run off while the page's edit is under way, the queue is filled by a script's edit."""
    max_steps = httpx.get(f"{server}/v1/info", timeout=10).json()["limits"]["max_steps"]
    busy_id = _submit_by_api(server, max_steps)
    _wait_api_status(server, busy_id, "running")
    open_editor(page)
    choose_task(page, "move")
    upload_image(page, make_png(256, 256))
    mark_edit(page, "move")
    set_steps(page, max_steps, max_resolution=256)

    queued_id = submit(page)  # one worker, busy: this one waits in the queue
    wait_status(page, "queued", timeout_ms=10_000)
    expect(page.locator("#job-status")).to_contain_text("Queued")
    expect(page.locator("#submit")).to_be_disabled()  # no duplicate while it waits
    page.click("#job-cancel")
    wait_status(page, "canceled", timeout_ms=10_000)
    expect(page.locator("#submit")).to_be_enabled()
    assert httpx.get(f"{server}/v1/edits/{queued_id}", timeout=10).json()["status"] == "canceled"

    running_id = submit(page)
    httpx.delete(f"{server}/v1/edits/{busy_id}", timeout=10)  # the worker comes free between steps
    # Progress while running: the stage and the step, a bar that moves, the time it has taken.
    expect(page.locator("#job-status")).to_contain_text(" of ", timeout=120_000)
    page.wait_for_function("() => document.getElementById('job-progress').value > 0", timeout=120_000)
    expect(page.locator("#job-time")).to_contain_text("elapsed")
    expect(page.locator("#submit")).to_be_disabled()

    # The canceled one again from the recent list (Run comes back: it has ended), while the
    # running one's row goes on following it.
    page.locator(f'#recent-list li[data-job-id="{queued_id}"] button').click()
    wait_status(page, "canceled", timeout_ms=10_000)
    expect(page.locator("#submit")).to_be_enabled()
    expect(page.locator(f'#recent-list li[data-job-id="{running_id}"]')).to_contain_text("running · step")
    # Back to the running one, and cancel it between steps.
    page.locator(f'#recent-list li[data-job-id="{running_id}"] button').click()
    wait_status(page, "running", timeout_ms=10_000)
    expect(page.locator("#submit")).to_be_disabled()
    page.click("#job-cancel")
    wait_status(page, "canceled", timeout_ms=60_000)
    expect(page.locator("#job-status")).to_have_text("Canceled.")
    expect(page.locator("#submit")).to_be_enabled()
    assert httpx.get(f"{server}/v1/edits/{running_id}", timeout=10).json()["status"] == "canceled"
    expect(page.locator(f'#recent-list li[data-job-id="{queued_id}"]')).to_contain_text("canceled")


def test_api_key_is_asked_for_kept_and_sent(page: Page) -> None:
    """A server that requires keys (simulated at the network layer: the test server is open)."""
    seen_auth: list[str | None] = []

    def info(route: Route) -> None:
        resp = route.fetch()
        body = resp.json()
        body["auth_required"] = True
        route.fulfill(response=resp, json=body)

    def edits(route: Route) -> None:
        auth = route.request.headers.get("authorization")
        seen_auth.append(auth)
        if auth != "Bearer sesame":
            err = {"error": {"code": "unauthorized", "message": "missing or unknown API key", "field": None}}
            route.fulfill(status=401, content_type="application/json", body=json.dumps(err))
        else:
            err = {"error": {"code": "invalid_value", "message": "prompt: too long", "field": "prompt"}}
            route.fulfill(status=422, content_type="application/json", body=json.dumps(err))

    page.route("**/v1/info", info)
    page.route("**/v1/edits", edits)
    open_editor(page)
    expect(page.locator("#auth")).to_be_visible()
    choose_task(page, "landmark")
    upload_image(page, make_png())
    page.click("#points-add")
    page.click("#submit")
    expect(page.locator("#api-key-error")).to_contain_text("API key")
    expect(page.locator("#api-key")).to_be_focused()

    page.fill("#api-key", "sesame")
    page.click("#api-key-save")
    page.click("#submit")
    expect(page.locator("#prompt-error")).to_have_text("Too long")
    assert seen_auth == [None, "Bearer sesame"]
    page.reload()
    expect(page.locator("#server-status")).to_contain_text("Connected")
    assert page.evaluate("() => localStorage.getItem('diffeditor.apiKey')") == "sesame"


def test_every_control_is_labelled_and_tasks_work_by_keyboard(page: Page, artifacts: Path) -> None:
    open_editor(page)
    unlabelled = page.evaluate(
        """() => [...document.querySelectorAll('input, select, textarea, button')]
            .filter(el => el.type !== 'hidden')
            .filter(el => !(el.labels && el.labels.length) && !el.getAttribute('aria-label')
                          && !el.getAttribute('aria-labelledby') && !(el.textContent || '').trim())
            .map(el => el.id || el.outerHTML.slice(0, 80))"""
    )
    assert unlabelled == []

    page.focus('input[name="task"][value="move"]')
    page.keyboard.press("ArrowDown")
    expect(page.locator('input[name="task"][value="drag"]')).to_be_checked()
    expect(page.locator("#points-add")).to_be_visible()
    expect(page.locator("#reference-file")).to_be_hidden()
    page.keyboard.press("ArrowDown")
    page.keyboard.press("ArrowDown")
    expect(page.locator('input[name="task"][value="appearance"]')).to_be_checked()
    expect(page.locator(".reference-controls")).to_be_visible()
    expect(page.locator(".points-controls")).to_be_hidden()

    # Defaults come from the server's schema (appearance: guidance 2, CFG 5).
    expect(page.locator("#param-guidance_strength")).to_have_value("2")
    page.click("#advanced summary")
    expect(page.locator("#param-cfg_scale")).to_have_value("5")
    expect(page.locator("#steps")).to_have_value("50")
    # On the demo model the page starts from a small working size (the schema says 768).
    expect(page.locator("#param-max_resolution")).to_have_value("128")

    # Focus is visible: the control reached with Tab gets an outline.
    page.focus("#steps")
    page.keyboard.press("Tab")
    outline = page.evaluate("() => getComputedStyle(document.activeElement).outlineStyle")
    assert outline not in ("", "none")
    page.set_viewport_size({"width": 390, "height": 844})
    page.screenshot(path=artifacts / "empty-390x844.png", full_page=True)


def test_drop_an_image_on_the_stage(page: Page) -> None:
    """Drag-and-drop upload (the drop event a file manager sends), main image and reference."""
    open_editor(page)
    choose_task(page, "paste")
    drop = """async ([selector, name, w, h]) => {
        const c = document.createElement('canvas');
        c.width = w;
        c.height = h;
        c.getContext('2d').fillRect(0, 0, w / 2, h / 2);
        const blob = await new Promise(r => c.toBlob(r, 'image/png'));
        const dt = new DataTransfer();
        dt.items.add(new File([blob], name, {type: 'image/png'}));
        document.querySelector(selector).dispatchEvent(new DragEvent('drop', {dataTransfer: dt, bubbles: true}));
    }"""
    page.evaluate(drop, ["#main-stage", "dropped.png", 120, 60])
    expect(page.locator("#image-name")).to_have_text("dropped.png · 120×60")
    box = main_frame(page).bounding_box()
    assert box is not None and abs(box["width"] / box["height"] - 2) < 0.05, "aspect ratio not kept"
    page.evaluate(drop, ["#reference-drop", "ref.png", 40, 40])
    expect(page.locator("#reference-name")).to_have_text("ref.png · 40×40")


def _mask_bits(png: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(png)).convert("L")) > 0


def _page_mask(page: Page, field: str) -> np.ndarray:
    """The mask layer the page would send as `field`, as the PNG it sends."""
    data = page.evaluate(
        """async (field) => {
        const d = window.diffeditor;
        const layer = field === "reference_mask" ? d.refStage.masks.reference
            : field === "region_mask" ? d.mainStage.masks.region : d.mainStage.masks.object;
        const blob = await layer.toPngBlob();
        return Array.from(new Uint8Array(await blob.arrayBuffer()));
    }""",
        field,
    )
    return _mask_bits(bytes(data))


def _page_blob_sha256(page: Page, which: str) -> str:
    return str(
        page.evaluate(
            """async (which) => {
            const buf = await window.diffeditor.state[which].arrayBuffer();
            const d = await crypto.subtle.digest('SHA-256', buf);
            return [...new Uint8Array(d)].map(b => b.toString(16).padStart(2, '0')).join('');
        }""",
            which,
        )
    )


def test_a_sample_loads_in_one_click_ready_to_run(page: Page, server: str, artifacts: Path) -> None:
    """Each sample: its task, image, masks (as the painted layers) and fields, and Run sends them."""
    samples = httpx.get(f"{server}/v1/samples", timeout=10).json()
    open_editor(page)
    page.evaluate(CAPTURE_SUBMIT)  # the edit itself is not under test
    expect(page.locator("#sample-list button")).to_have_count(len(samples))
    for s in samples:
        name, params, size = s["name"], s["params"], s["size"]
        page.locator(f'#sample-list button[data-sample="{name}"]').click()
        expect(page.locator("#samples-status")).to_contain_text(f"Loaded “{s['title']}”")
        expect(page.locator(f'input[name="task"][value="{s["task"]}"]')).to_be_checked()
        expect(page.locator("#image-name")).to_contain_text(f"sample-{name}.png · {size}×{size}")
        files = {field: httpx.get(f"{server}{url}", timeout=10).content for field, url in s["files"].items()}
        assert _page_blob_sha256(page, "image") == hashlib.sha256(files["image"]).hexdigest()
        if "reference" in files:
            assert _page_blob_sha256(page, "reference") == hashlib.sha256(files["reference"]).hexdigest()
            expect(page.locator("#reference-name")).to_contain_text(f"{size}×{size}")
        for field in ("mask", "region_mask", "reference_mask"):
            if field in files:
                assert (_page_mask(page, field) == _mask_bits(files[field])).all(), f"{name}: {field} not loaded"
        if "mask" in files:
            expect(page.locator("#mask-coverage")).to_contain_text("Mask covers")

        expect(page.locator("#prompt")).to_have_value(params["prompt"])
        if "reference_prompt" in params:
            expect(page.locator("#reference_prompt")).to_have_value(params["reference_prompt"])
        expect(page.locator("#param-max_resolution")).to_have_value(str(params["max_resolution"]))
        if "offset" in params:
            offset = [float(page.input_value("#offset-dx")), float(page.input_value("#offset-dy"))]
            assert offset == params["offset"]
        if "scale" in params:
            assert float(page.input_value("#scale")) == params["scale"]
        if "points" in params:
            expect(page.locator("#points-list li")).to_have_count(len(params["points"]))
            assert page.evaluate("() => window.diffeditor.state.points") == params["points"]
        page.screenshot(path=artifacts / f"sample-{name}-1280x800.png", full_page=True)

        # Run edit at once sends the sample's parts and values.
        page.click("#submit")
        expect(page.locator("#form-error")).to_contain_text("queued in this test")
        parts = page.evaluate("() => window.__sent.at(-1)")
        assert set(parts) == {"params", *files}, name
        body = json.loads(parts["params"])
        for key, value in params.items():
            assert body[key] == value, (name, key, body[key], value)


def test_upload_a_mask_instead_of_painting(page: Page) -> None:
    open_editor(page)
    choose_task(page, "move")
    upload_image(page, make_png(96, 80))
    mask = Image.new("L", (96, 80), 0)
    mask.paste(255, (10, 20, 40, 60))
    buf = io.BytesIO()
    mask.save(buf, "PNG")
    upload(page, "#mask-file", buf.getvalue(), "mask.png")
    expect(page.locator("#mask-coverage")).to_contain_text("Mask covers 16%")
    assert (_page_mask(page, "mask") == _mask_bits(buf.getvalue())).all()
    page.click("#mask-undo")  # an uploaded mask is painted pixels like any other: undo works
    expect(page.locator("#mask-coverage")).to_have_text("Mask is empty.")

    upload(page, "#mask-file", make_png(40, 40), "small.png")
    expect(page.locator("#mask-error")).to_contain_text("40×40")
    expect(page.locator("#mask-coverage")).to_have_text("Mask is empty.")

    # The fill-hint layer takes an upload too, into that layer only.
    page.select_option("#mask-layer", "region")
    upload(page, "#mask-file", buf.getvalue(), "hint.png")
    expect(page.locator("#mask-coverage")).to_contain_text("Mask covers 16%")  # (the layer shown)
    assert (_page_mask(page, "region_mask") == _mask_bits(buf.getvalue())).all()
    assert not _page_mask(page, "mask").any()

    # And the reference's mask (paste, appearance), at the reference's size.
    choose_task(page, "paste")
    upload_reference(page, make_png(80, 64, hue=90))
    upload(page, "#ref-mask-file", make_png(96, 80), "wrong.png")
    expect(page.locator("#reference_mask-error")).to_contain_text("80×64")
    ref_mask = Image.new("L", (80, 64), 0)
    ref_mask.paste(255, (8, 8, 40, 40))
    ref_buf = io.BytesIO()
    ref_mask.save(ref_buf, "PNG")
    upload(page, "#ref-mask-file", ref_buf.getvalue(), "ref-mask.png")
    expect(page.locator("#ref-mask-undo")).to_be_enabled()  # loaded (the wrong size was not)
    expect(page.locator("#reference_mask-error")).to_have_text("")
    assert (_page_mask(page, "reference_mask") == _mask_bits(ref_buf.getvalue())).all()

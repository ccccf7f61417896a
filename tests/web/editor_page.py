"""Driving the editor page the way a person does: upload, pick a task, paint with the mouse,
click points, drag the object, submit. Coordinates are fractions of the displayed image, so the
same steps work at any viewport size."""

from __future__ import annotations

import io
import json

from PIL import Image, ImageDraw
from playwright.sync_api import Locator, Page, expect
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

JOB_TIMEOUT_MS = 180_000
SUBMIT_TIMEOUT_MS = 90_000  # Run → job id: an upload and one POST, slow only on a loaded 2-core CI machine

# Run edit's form, kept instead of sent (Chromium does not show blob bodies to route handlers).
CAPTURE_SUBMIT = """() => {
    window.__sent = [];
    window.diffeditor.api.submit = async (fd) => {
        const parts = {};
        for (const [name, value] of fd.entries()) parts[name] = typeof value === "string" ? value : value.size;
        window.__sent.push(parts);
        throw new Error("not queued in this test");
    };
}"""


def make_png(width: int = 96, height: int = 96, *, hue: int = 0) -> bytes:
    """A generated test picture: a gradient with a bright disc (something to mask and move)."""
    img = Image.new("RGB", (width, height))
    px = img.load()
    for y in range(height):
        for x in range(width):
            px[x, y] = ((40 + hue + x * 2) % 256, (90 + y * 2) % 256, 170)
    d = ImageDraw.Draw(img)
    r = min(width, height) // 5
    cx, cy = width // 3, height // 2
    d.ellipse((cx - r, cy - r, cx + r, cy + r), fill=(240, 200, 40))
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


def open_editor(page: Page) -> None:
    page.goto("/")
    expect(page.locator("#server-status")).to_contain_text("Connected")


def choose_task(page: Page, task: str) -> None:
    page.locator(f'label.task-option:has(input[value="{task}"])').click()
    expect(page.locator(f'input[name="task"][value="{task}"]')).to_be_checked()


def upload(page: Page, input_selector: str, png: bytes, name: str) -> None:
    page.set_input_files(input_selector, files=[{"name": name, "mimeType": "image/png", "buffer": png}])


def upload_image(page: Page, png: bytes, name: str = "input.png") -> None:
    upload(page, "#image-file", png, name)
    expect(page.locator("#image-name")).to_contain_text(name)
    expect(page.locator("#main-stage .stage-frame")).to_be_visible()


def upload_reference(page: Page, png: bytes, name: str = "reference.png") -> None:
    upload(page, "#reference-file", png, name)
    expect(page.locator("#reference-name")).to_contain_text(name)


def pick_tool(page: Page, value: str) -> None:
    page.locator(f'#main-tools label:has(input[value="{value}"])').click()
    expect(page.locator(f'input[name="main-tool"][value="{value}"]')).to_be_checked()


def _frame_box(frame: Locator) -> dict[str, float]:
    frame.scroll_into_view_if_needed()
    box = frame.bounding_box()
    assert box is not None and box["width"] > 0, "the image is not displayed"
    return box


def drag_mouse(page: Page, frame: Locator, path: list[tuple[float, float]]) -> None:
    """Press at the first point, move through the rest, release (fractions of the image)."""
    box = _frame_box(frame)

    def at(fx: float, fy: float) -> tuple[float, float]:
        return box["x"] + box["width"] * fx, box["y"] + box["height"] * fy

    page.mouse.move(*at(*path[0]))
    page.mouse.down()
    for fx, fy in path[1:]:
        page.mouse.move(*at(fx, fy), steps=4)
    page.mouse.up()


def click_image(page: Page, frame: Locator, fx: float, fy: float) -> None:
    box = _frame_box(frame)
    page.mouse.click(box["x"] + box["width"] * fx, box["y"] + box["height"] * fy)


def main_frame(page: Page) -> Locator:
    return page.locator("#main-stage .stage-frame")


def ref_frame(page: Page) -> Locator:
    return page.locator("#reference-stage .stage-frame")


def paint_disc_mask(page: Page, frame: Locator) -> None:
    """Scribble over the disc make_png draws (centre at 1/3, 1/2)."""
    drag_mouse(page, frame, [(0.25, 0.42), (0.4, 0.42), (0.4, 0.58), (0.25, 0.58), (0.33, 0.5)])


def set_steps(page: Page, steps: int, max_resolution: int = 128) -> None:
    """Few steps at a small working size: the tests are about the page, not the algorithm."""
    page.fill("#steps", str(steps))
    if not page.locator("#advanced").evaluate("d => d.open"):
        page.click("#advanced summary")
    page.fill("#param-max_resolution", str(max_resolution))


def record_status(page: Page) -> None:
    """Keep every text the job status line shows, to check what a person saw along the way."""
    page.evaluate(
        """() => {
        window.__statusLog = [];
        const el = document.getElementById('job-status');
        new MutationObserver(() => window.__statusLog.push(el.textContent))
            .observe(el, {childList: true, characterData: true, subtree: true});
    }"""
    )


def sent_params(page: Page) -> dict:
    """The params JSON of the last Run edit CAPTURE_SUBMIT kept."""
    return json.loads(page.evaluate("() => window.__sent.at(-1).params"))


def status_log(page: Page) -> list[str]:
    return list(page.evaluate("() => window.__statusLog || []"))


def shown_errors(page: Page) -> dict[str, str]:
    """Every non-empty error slot, the form's error and the Run button's state, for a failure message."""
    return dict(
        page.evaluate(
            """() => {
            const out = {};
            for (const el of document.querySelectorAll('[data-error-for]'))
                if (el.textContent.trim()) out[el.dataset.errorFor] = el.textContent.trim();
            const run = document.getElementById('submit');
            out.run = `${run.textContent} disabled=${run.disabled}`;
            out.hint = document.getElementById('submit-hint').textContent;
            return out;
        }"""
        )
    )


def submit(page: Page) -> str:
    """Click Run and return the new job's id (the page keeps it in full in the title)."""
    before = page.locator("#job-id").get_attribute("title") or ""
    page.click("#submit")
    try:
        page.wait_for_function(
            "(b) => { const t = document.getElementById('job-id').title; return t && t !== b; }",
            arg=before,
            timeout=SUBMIT_TIMEOUT_MS,
        )
    except PlaywrightTimeoutError:
        raise AssertionError(f"no new job after Run; the page showed: {shown_errors(page)!r}") from None
    expect(page.locator("#job")).to_be_visible()
    value = page.locator("#job-id").get_attribute("title")
    assert value and len(value) == 32, f"no job id on the page: {value!r}"
    return value


def wait_status(page: Page, status: str, timeout_ms: int = JOB_TIMEOUT_MS) -> None:
    expect(page.locator("#job")).to_have_attribute("data-status", status, timeout=timeout_ms)


def page_result_sha256(page: Page) -> str:
    """sha256 of the result image the page fetched (and offers for download)."""
    return str(
        page.evaluate(
            """async () => {
            const buf = await window.diffeditor.state.resultBlob.arrayBuffer();
            const d = await crypto.subtle.digest('SHA-256', buf);
            return [...new Uint8Array(d)].map(b => b.toString(16).padStart(2, '0')).join('');
        }"""
        )
    )

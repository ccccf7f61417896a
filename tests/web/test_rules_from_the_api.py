"""The page restates no input rule of the API: which controls a task shows comes from
GET /v1/tasks, and the words of an error from its `code` and `field`, never from its message."""

from __future__ import annotations

import json

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
    upload_image,
)


def _answer_edits_with(page: Page, error: dict) -> None:
    def edits(route: Route) -> None:
        route.fulfill(status=422, content_type="application/json", body=json.dumps({"error": error}))

    page.route("**/v1/edits", edits)


def test_the_controls_a_task_shows_come_from_the_tasks_endpoint(page: Page) -> None:
    def tasks(route: Route) -> None:
        resp = route.fetch()
        body = resp.json()
        for task in body["tasks"]:
            if task["name"] == "move":  # a server whose move takes no fill hint
                task["files"]["optional"].remove("region_mask")
            if task["name"] == "landmark":  # and whose landmark takes a mask
                task["files"]["required"].append("mask")
        route.fulfill(response=resp, json=body)

    page.route("**/v1/tasks", tasks)
    open_editor(page)
    choose_task(page, "move")
    expect(page.locator(".mask-controls")).to_be_visible()
    expect(page.locator("#mask-layer")).to_be_hidden()
    choose_task(page, "landmark")
    expect(page.locator(".mask-controls")).to_be_visible()
    expect(page.locator('#main-tools label:has(input[value="brush"])')).to_be_visible()
    expect(page.locator(".offset-controls")).to_be_hidden()
    choose_task(page, "paste")
    expect(page.locator(".mask-controls")).to_be_hidden()
    expect(page.locator(".reference-controls")).to_be_visible()


def test_error_words_come_from_the_code_not_the_message(page: Page) -> None:
    open_editor(page)
    choose_task(page, "move")
    upload_image(page, make_png())
    pick_tool(page, "brush")
    paint_disc_mask(page, main_frame(page))
    # The page's own words for empty_mask, whatever the message says.
    _answer_edits_with(page, {"code": "empty_mask", "message": "mask: aucun pixel", "field": "mask"})
    page.click("#submit")
    expect(page.locator("#mask-error")).to_contain_text("The mask is empty")
    # Another code keeps the server's message, even one that reads like a missing or empty mask.
    page.unroute("**/v1/edits")
    _answer_edits_with(page, {"code": "invalid_value", "message": "mask: missing or empty, it says", "field": "mask"})
    page.click("#submit")
    expect(page.locator("#mask-error")).to_have_text("Missing or empty, it says")
    expect(page.locator("#form-error")).to_have_text("Check “Mask”: Missing or empty, it says")


def test_no_points_are_left_out_for_the_api_to_name(page: Page) -> None:
    open_editor(page)
    choose_task(page, "landmark")
    upload_image(page, make_png())
    page.evaluate(CAPTURE_SUBMIT)
    page.click("#submit")
    expect(page.locator("#form-error")).to_contain_text("queued in this test")
    assert "points" not in sent_params(page)
    page.click("#points-add")
    page.click("#submit")
    page.wait_for_function("() => window.__sent.length === 2")
    assert len(sent_params(page)["points"]) == 1

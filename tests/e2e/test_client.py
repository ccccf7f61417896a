"""`diffeditor.client` and `diffeditor submit` against the embedded server (`diffeditor serve`, no
REDIS_URL, the demo model), one server for the module: the sync and the async client submit, wait
with progress, fetch the result as a PIL image and cancel; `submit` runs once as the README writes
it; docs/api.md's client examples run as written."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from PIL import Image

from diffeditor.client import (
    ApiError,
    AsyncClient,
    Client,
    CompletedEvent,
    Event,
    ProgressEvent,
    QueuedEvent,
    StartEvent,
)
from tests.doc_snippets import commands, fenced_blocks, indented_block, section
from tests.e2e.conftest import EDITS, REPO, WORKER_START_TIMEOUT_S, slow_move
from tests.processes import free_port, stop_process, wait_for_http

BIN = Path(sys.executable).parent


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "REDIS_URL" and not k.startswith("DIFFEDITOR_")}
    env.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", PYTHONUNBUFFERED="1", PYTHONPATH=str(REPO))
    env.update(OMP_NUM_THREADS="1", **extra)
    return env


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("client")


@pytest.fixture(scope="module")
def base_url(workdir: Path) -> Iterator[str]:
    port, log = free_port(), workdir / "serve.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "diffeditor", "serve", "--port", str(port), "--model", "demo"]
            + ["--data-dir", "results", "--cpu-threads", "1"],
            cwd=workdir,
            env=clean_env(),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        base = f"http://127.0.0.1:{port}"
        wait_for_http(f"{base}/readyz", WORKER_START_TIMEOUT_S, proc, log)
        yield base
    finally:
        stop_process(proc, timeout=30)


def test_sync_client_submit_wait_result_and_cancel(base_url: str) -> None:
    params, files = EDITS["move"]
    seen: list[Event] = []
    with Client(base_url) as client:
        job = client.submit(params, files)
        assert job.status == "queued" and job.task == "move"
        done = client.wait(job.id, progress=seen.append, timeout=180)
        assert done.succeeded and done.params["seed"] is not None and done.stats
        image = client.result(done.id)
        assert isinstance(image, Image.Image) and image.size == (64, 64)
        assert client.get(done.id).status == "succeeded"

        kinds = {type(e) for e in seen}
        assert {StartEvent, ProgressEvent} <= kinds and CompletedEvent not in kinds
        sampling = [e for e in seen if isinstance(e, ProgressEvent) and e.stage == "sampling"]
        assert sampling and sampling[-1].step == sampling[-1].total

        # One worker: a slow job runs, the next waits; canceling the queued one ends it at once,
        # the running one stops between two steps.
        slow_params, slow_files = slow_move()
        running = client.submit(slow_params, slow_files)
        queued = client.submit(params, files)
        assert client.cancel(queued.id).status == "canceled"
        client.cancel(running.id)
        assert client.wait(running.id, timeout=180).status == "canceled"
        with pytest.raises(ApiError) as info:
            client.result(running.id)
        assert (info.value.status, info.value.code) == (409, "job_canceled")
        with pytest.raises(ApiError) as info:
            client.cancel(queued.id)
        assert info.value.code == "already_finished"


def test_async_client_edit_and_events(base_url: str) -> None:
    params, files = EDITS["drag"]

    async def run() -> tuple[Image.Image, list[Event], list[Event]]:
        progress: list[Event] = []
        async with AsyncClient(base_url) as client:
            image = await client.edit(params, files, progress=progress.append, timeout=180)
            job = await client.submit(params, files, deadline_s=120)
            assert job.deadline_at is not None
            events = [event async for event in client.events(job.id)]
            # The whole log again, from its start, after the stream has ended.
            again = [event async for event in client.events(job.id, last_event_id=events[0].id)]
            assert [e.id for e in again] == [e.id for e in events[1:] if e.id]
            assert (await client.wait(job.id, timeout=60)).succeeded
        return image, progress, events

    # In a thread of its own: a session-wide fixture (playwright's sync API) may hold an event
    # loop in this one, and asyncio.run refuses to start inside a running loop.
    with ThreadPoolExecutor(1) as pool:
        image, progress, events = pool.submit(asyncio.run, run()).result()
    assert image.size == (64, 64)
    assert any(isinstance(e, ProgressEvent) for e in progress)
    assert isinstance(events[0], QueuedEvent) and isinstance(events[-1], CompletedEvent)
    assert [e.type for e in events].count("completed") == 1 and any(isinstance(e, StartEvent) for e in events)


def test_submit_command_as_the_readme_writes_it(base_url: str, workdir: Path) -> None:
    readme = (REPO / "README.md").read_text()
    (command,) = commands(indented_block(readme, "`diffeditor submit` sends the same"))
    assert command.startswith(".venv/bin/diffeditor submit move --server http://localhost:8000 ")
    samples = subprocess.run(
        [str(BIN / "diffeditor"), "samples", "samples"], cwd=workdir, env=clean_env(), capture_output=True, timeout=120
    )
    assert samples.returncode == 0, samples.stderr
    command = command.replace(".venv/bin/", f"{BIN}/").replace("http://localhost:8000", base_url)
    started = time.monotonic()
    done = subprocess.run(
        command, shell=True, cwd=workdir, env=clean_env(), capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-2000:]
    with Image.open(workdir / "moved-served.png") as out:
        assert (out.format, out.size) == ("PNG", (128, 128))
    assert done.stdout.startswith("wrote moved-served.png (job ")
    # Not a terminal: plain progress lines, one per stage at least, then the outcome.
    lines = done.stderr.splitlines()
    assert lines[0].startswith("submitted ") and lines[-1] == "succeeded", done.stderr
    assert any(line.startswith("sampling ") and "50/50" in line for line in lines), done.stderr
    print(f"submit command: {time.monotonic() - started:.1f} s")

    # An input the server refuses: one line with its code and field, exit 2, nothing written.
    bad = command.replace("--offset 2,22", "--offset 900,900")  # the object leaves the image
    bad = bad.replace("moved-served.png", "not-written.png")
    refused = subprocess.run(bad, shell=True, cwd=workdir, env=clean_env(), capture_output=True, text=True, timeout=60)
    assert refused.returncode == 2 and not (workdir / "not-written.png").exists()
    assert refused.stderr.strip().count("\n") == 0 and "offset_outside (field offset)" in refused.stderr, refused.stderr


def test_api_doc_client_examples_run_as_written(base_url: str, workdir: Path) -> None:
    blocks = fenced_blocks(section((REPO / "docs" / "api.md").read_text(), "Python client"), "python")
    assert len(blocks) >= 2, "docs/api.md's client examples"
    for name in ("image", "mask"):  # what the doc's curl example fetched before
        response = httpx.get(f"{base_url}/v1/samples/move/{name}.png")
        (workdir / {"image": "in.png", "mask": "obj.png"}[name]).write_bytes(response.content)
    for i, block in enumerate(blocks):
        script = workdir / f"client_example_{i}.py"
        script.write_text(block.replace("http://localhost:8000", base_url))
        done = subprocess.run(
            [sys.executable, script.name], cwd=workdir, env=clean_env(), capture_output=True, text=True, timeout=300
        )
        assert done.returncode == 0, f"{block}\n{done.stderr[-2000:]}"
    assert Image.open(workdir / "result.png").size == (128, 128)

"""`diffeditor submit` without a server: its flags are `edit`'s and are refused alike (exit 2, one
line naming the field), and its progress display on a terminal and off one. (Against a server:
tests/e2e/test_client.py.)"""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from diffeditor.cli import main
from diffeditor.client import Event, Job, ProgressEvent, QueuedEvent, StartEvent
from diffeditor.submit import ProgressBar
from tests.diffeditor.test_client import job_body


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--offset", "1,2", "--steps", "2"], "diffeditor: invalid steps: Input should be greater than or equal to 4"),
        (["--offset", "1,2", "--output", "out.gif"], "diffeditor: invalid output: must end in .png, .webp or .jpg"),
        (["--offset", "1,2", "--mask", "missing.png"], "diffeditor: invalid mask: file missing.png does not exist"),
        (
            ["--offset", "1,2", "--server", ""],
            "diffeditor: invalid server: --server URL (or DIFFEDITOR_SERVER) is required",
        ),
        (["--offset", "1,2", "--webhook-events", "done"], "diffeditor move: error: argument --webhook-events"),
        (["--offset", "1"], "diffeditor move: error: argument --offset: expected DX,DY, got '1'"),
    ],
)
def test_bad_flags_exit_2_naming_the_field(
    argv: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("DIFFEDITOR_SERVER", raising=False)
    (tmp_path / "in.png").write_bytes(b"not read before the flags pass")
    base = ["submit", "move", "--server", "http://127.0.0.1:9", "--image", "in.png", "--mask", "in.png"]
    with pytest.raises(SystemExit) as info:
        main([*base, "--output", "out.png", *argv])
    err = capsys.readouterr().err
    assert info.value.code == 2 and err.startswith(message) and err.count("\n") == 1, err
    assert not (tmp_path / "out.png").exists()


EVENTS: list[Event] = [
    QueuedEvent(position=1),
    QueuedEvent(position=0),
    StartEvent(worker="w1"),
    ProgressEvent(stage="inversion", step=1, total=4),
    ProgressEvent(stage="inversion", step=2, total=4),
    ProgressEvent(stage="inversion", step=4, total=4, eta_s=3.2),
    ProgressEvent(stage="sampling", step=2, total=4, eta_s=1.0),
]


def test_the_progress_bar_on_a_terminal() -> None:
    out = io.StringIO()
    bar = ProgressBar(out, tty=True)
    for event in EVENTS:
        bar(event)
    bar.finish(Job.model_validate(job_body("succeeded")))
    frames = out.getvalue().split("\r")[1:]
    assert frames[0] == "queued (position 1)\x1b[K" and frames[2] == "running on w1\x1b[K"
    assert frames[-1] == "sampling     [############............] 2/4  ETA 1s\x1b[K\nsucceeded\n"


def test_plain_progress_lines_off_a_terminal() -> None:
    out = io.StringIO()
    bar = ProgressBar(out, tty=False)
    for event in EVENTS:
        bar(event)
    # Every queue position and stage, a stage's last step; steps within a stage at most every 2 s.
    assert out.getvalue().splitlines() == [
        "queued (position 1)",
        "queued (position 0)",
        "running on w1",
        "inversion    1/4",
        "inversion    4/4  ETA 3s",
        "sampling     2/4  ETA 1s",
    ]


def test_ctrl_c_during_the_upload_cancels_the_job_the_server_took(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The server has the job, the answer never came (Ctrl+C): the submit is replayed with the same
    idempotency key, which answers that job, and the job is canceled."""
    import httpx

    from diffeditor import submit as submit_module
    from diffeditor.client import Client
    from tests.diffeditor.test_client import JOB_ID

    seen: list[tuple[str, str, str | None]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append((request.method, request.url.path, request.headers.get("idempotency-key")))
        if request.method == "POST" and len(seen) == 1:
            raise KeyboardInterrupt  # the user's Ctrl+C, after the server took the job
        if request.method == "POST":
            return httpx.Response(200, json=job_body("queued"))  # the replay: the same job
        return httpx.Response(200, json=job_body("canceled"))

    monkeypatch.setattr(
        submit_module, "Client", lambda *a, **kw: Client(*a, transport=httpx.MockTransport(handler), **kw)
    )
    monkeypatch.chdir(tmp_path)
    (tmp_path / "in.png").write_bytes(b"sent as is")
    argv = ["submit", "move", "--server", "http://server", "--image", "in.png", "--mask", "in.png", "--offset", "1,2"]
    assert main([*argv, "--output", "out.png"]) == 130
    (post, _, key), (replay, _, replay_key), (delete, path, _) = seen
    assert (post, replay, delete) == ("POST", "POST", "DELETE") and key and key.startswith("cli-") and replay_key == key
    assert path == f"/v1/edits/{JOB_ID}"
    assert f"canceling {JOB_ID}" in capsys.readouterr().err

"""The REST examples of README.md and docs/api.md run as written, in bash with curl, against the
Quickstart's service (`diffeditor serve`, embedded mode, demo model) started by the README's own
command: README's on an open server, docs/api.md's with an API key, `localhost:8000` pointed at
the test's free port."""

from __future__ import annotations

import hashlib
import os
import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from PIL import Image

from tests.doc_snippets import REPO, fenced_blocks, indented_block
from tests.e2e.conftest import WORKER_START_TIMEOUT_S
from tests.processes import free_port, stop_process, wait_for_http

pytestmark = pytest.mark.skipif(shutil.which("curl") is None, reason="the examples use curl")
KEY = "dev-key"
README = (REPO / "README.md").read_text()
BIN = Path(sys.executable).parent


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "REDIS_URL" and not k.startswith("DIFFEDITOR_")}
    env.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", PYTHONUNBUFFERED="1", PYTHONPATH=str(REPO))
    env.update(extra)
    return env


def quickstart_serve() -> list[str]:
    """The Quickstart's service command, after its `scripts/setup &&` (the suite runs set up)."""
    block = indented_block(README, "Run the service (embedded mode")
    setup, serve = block.strip().split(" && ")
    assert setup == "scripts/setup" and serve.startswith(".venv/bin/diffeditor serve"), block
    return [str(BIN / "diffeditor"), *shlex.split(serve)[1:]]


@contextmanager
def embedded_serve(workdir: Path, **settings: str) -> Iterator[int]:
    """The Quickstart's `diffeditor serve --port 8000` in `workdir` (results in ./data), on a free
    port and one CPU thread; yields the port once ready."""
    command = quickstart_serve()
    port, log = free_port(), workdir / "serve.log"
    command[command.index("--port") + 1] = str(port)
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [*command, "--cpu-threads", "1"],
            cwd=workdir,
            env=clean_env(**settings),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_for_http(f"http://127.0.0.1:{port}/readyz", WORKER_START_TIMEOUT_S, proc, log)
        yield port
    finally:
        stop_process(proc, timeout=30)


def run_bash(script: str, port: int, cwd: Path, **env: str) -> subprocess.CompletedProcess:
    script = script.replace("localhost:8000", f"127.0.0.1:{port}")
    return subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        cwd=cwd,
        env=clean_env(**env),
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_readme_rest_example(tmp_path: Path) -> None:
    script = indented_block(README, "With `diffeditor serve --port 8000` running")
    assert "ID=$(" in script and "/result" in script
    with embedded_serve(tmp_path) as port:
        done = run_bash(script, port, tmp_path)
    assert done.returncode == 0, f"{done.stdout[-2000:]}\n{done.stderr[-2000:]}"
    with Image.open(tmp_path / "out.png") as out:
        assert (out.format, out.size) == ("PNG", (128, 128))  # the demo model's default working size
    with Image.open(tmp_path / "out.webp") as webp:
        assert webp.format == "WEBP"
    assert '"code":"already_finished"' in done.stdout.replace(" ", "")  # the last line: cancel a finished job


def test_api_doc_examples_with_a_key(tmp_path: Path) -> None:
    blocks = fenced_blocks((REPO / "docs" / "api.md").read_text())
    assert len(blocks) >= 4, "docs/api.md's sh examples"
    script = "\n".join(blocks)
    key_hash = hashlib.sha256(KEY.encode()).hexdigest()
    with embedded_serve(tmp_path, DIFFEDITOR_API_KEY_HASHES=key_hash) as port:
        done = run_bash(script, port, tmp_path, KEY=KEY)
        (tmp_path / "wrong-key").mkdir()
        wrong_key = run_bash(script, port, tmp_path / "wrong-key", KEY="not-a-key")
    assert done.returncode == 0, f"{done.stdout[-2000:]}\n{done.stderr[-2000:]}"
    assert key_hash in done.stdout  # the authentication section's digest command
    with Image.open(tmp_path / "result.webp") as webp:
        assert webp.format == "WEBP"
    # With a key the server does not know, the submission is refused and the script stops there.
    assert wrong_key.returncode != 0 and '"code":"unauthorized"' in wrong_key.stdout.replace(" ", "")

"""`diffeditor serve` with no REDIS_URL: API + in-process queue + one in-process worker on the demo
model, over real HTTP; SIGTERM shuts it down cleanly."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
from PIL import Image

from tests.e2e.conftest import EDITS, REPO, WORKER_START_TIMEOUT_S, multipart
from tests.processes import free_port, wait_for_http


def test_embedded_serve_runs_an_edit_over_http(tmp_path: Path) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "REDIS_URL" and not k.startswith("DIFFEDITOR_")}
    env.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", PYTHONUNBUFFERED="1", PYTHONPATH=str(REPO))
    log = tmp_path / "serve.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            # Settings on the command line (README: `serve --model ...`), over their environment variables.
            [sys.executable, "-m", "diffeditor", "serve", "--port", str(port), "--model", "demo"]
            + ["--data-dir", "results", "--cpu-threads", "1"],
            cwd=tmp_path,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        try:
            base = f"http://127.0.0.1:{port}"
            wait_for_http(f"{base}/healthz", 60, proc, log)
            ready = wait_for_http(f"{base}/readyz", WORKER_START_TIMEOUT_S, proc, log).json()
            assert ready["ready"] is True and ready["demo_model"] is True and ready["workers"] == 1
            assert httpx.get(f"{base}/v1/info").json()["default_resolution"] == 128  # the demo model's size

            with httpx.Client(base_url=base, timeout=30) as http:
                params, files = EDITS["move"]
                response = http.post("/v1/edits", **multipart(params, files))
                assert response.status_code == 202, response.text
                job_id = response.json()["id"]
                deadline = time.monotonic() + 180
                while time.monotonic() < deadline:
                    body = http.get(f"/v1/edits/{job_id}").json()
                    if body["status"] in ("succeeded", "failed", "canceled"):
                        break
                    time.sleep(0.2)
                assert body["status"] == "succeeded", body
                result = http.get(f"/v1/edits/{job_id}/result")
                assert result.status_code == 200
                assert Image.open(io.BytesIO(result.content)).size == (64, 64)

            assert (tmp_path / "results" / job_id / "result.png").is_file()  # --data-dir
            text = log.read_text()
            assert "EMBEDDED MODE" in text and "DEMO MODEL" in text and "CPU: 1 intra-op threads" in text

            proc.send_signal(signal.SIGTERM)  # warm shutdown: worker stops, then the server
            assert proc.wait(timeout=60) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()

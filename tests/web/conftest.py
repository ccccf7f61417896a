"""Fixtures for the browser tests: one `diffeditor serve` (embedded mode, demo model) and one
headless Chromium per session, a fresh browser context (empty local storage) per test.

Chromium is Debian's package at /usr/bin/chromium, driven by Playwright's Python client with
`executable_path` (Playwright's own browser download is not used). `scripts/setup-browser`
installs both. A browser that cannot start FAILS the tests: a silent skip would hide a broken page.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.processes import free_port, stop_process

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "test-artifacts" / "web"
CHROMIUM = os.environ.get("DIFFEDITOR_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SERVER_START_TIMEOUT_S = 240  # loading and warming the demo model on a busy 2-core machine
INSTALL_HINT = "Install it with scripts/setup-browser (Debian chromium + the playwright Python package)."


def _log_tail(path: Path, n: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-n:])
    except OSError:
        return "(no log)"


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Base URL of `diffeditor serve` in embedded mode (no REDIS_URL), cwd a temporary folder."""
    workdir = tmp_path_factory.mktemp("web-serve")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("DIFFEDITOR_") and k != "REDIS_URL"}
    env.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", PYTHONUNBUFFERED="1")
    # The checkout under test serves the page, not whichever one the environment installed in
    # editable mode (another worktree's `service/static` would be tested instead).
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH", "")) if p)
    log_path = workdir / "serve.log"
    exe = Path(sys.executable).with_name("diffeditor")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "diffeditor"]
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [*cmd, "serve", "--host", "127.0.0.1", "--port", str(port)],
            cwd=workdir,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + SERVER_START_TIMEOUT_S
        while True:
            if proc.poll() is not None:
                pytest.fail(f"`diffeditor serve` exited with {proc.returncode}:\n{_log_tail(log_path)}")
            try:
                if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"`diffeditor serve` not ready after {SERVER_START_TIMEOUT_S} s:\n{_log_tail(log_path)}")
            time.sleep(0.5)
        served = httpx.get(f"{base}/static/app.js", timeout=10).text
        if served != (REPO / "service" / "static" / "app.js").read_text():
            pytest.fail(f"`diffeditor serve` serves another checkout's page, not {REPO}'s")
        yield base
    finally:
        stop_process(proc, timeout=30)


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    try:
        from playwright.sync_api import Error as PlaywrightError
        from playwright.sync_api import sync_playwright
    except ImportError as exc:
        pytest.fail(f"The Python package `playwright` is missing ({exc}). {INSTALL_HINT}")
    if not Path(CHROMIUM).exists():
        pytest.fail(f"Chromium not found at {CHROMIUM}. {INSTALL_HINT}")
    with sync_playwright() as pw:
        try:
            b = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        except PlaywrightError as exc:
            pytest.fail(f"Chromium at {CHROMIUM} could not start: {exc}. {INSTALL_HINT}")
        yield b
        b.close()


@pytest.fixture
def page(browser, server: str) -> Iterator[object]:
    """A page on the editor at 1280×800 in a fresh context; browser errors fail the test."""
    ctx = browser.new_context(viewport={"width": 1280, "height": 800}, base_url=server)
    pg = ctx.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda exc: errors.append(str(exc)))
    pg.set_default_timeout(30_000)
    yield pg
    ctx.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS

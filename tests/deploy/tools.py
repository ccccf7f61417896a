"""Helpers of the deployment tests: where things are, the pinned tools from
scripts/setup-deploy-tools (hadolint, docker compose v2, kubectl with kustomize), found in the venv
or on PATH, and the rendered Kubernetes overlays. A missing tool fails the test with the command
that installs it: these checks are part of the suite, never skipped."""

from __future__ import annotations

import copy
import shutil
import subprocess
import sys
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
OVERLAYS = ("dev", "prod")
SETUP_HINT = "run scripts/setup-deploy-tools (installs the pinned deploy-tools extra of pyproject.toml)"


def tool(name: str) -> str:
    """Path of a command-line tool: the venv's bin first (where the setup script puts it), then PATH."""
    here = Path(sys.executable).parent / name
    found = str(here) if here.is_file() else shutil.which(name)
    if found is None:
        pytest.fail(f"{name} is not installed: {SETUP_HINT}", pytrace=False)
    return found


def run(args: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, timeout=120, cwd=ROOT, **kwargs)


@cache
def _render(overlay: str) -> tuple[dict, ...]:
    result = run([tool("kubectl"), "kustomize", str(DEPLOY / "overlays" / overlay)])
    assert result.returncode == 0, f"kustomize failed for {overlay}:\n{result.stderr}"
    return tuple(doc for doc in yaml.safe_load_all(result.stdout) if doc)


def render(overlay: str) -> list[dict]:
    """The overlay's manifests as kubectl would apply them (a fresh copy per call)."""
    return copy.deepcopy(list(_render(overlay)))

"""Shared engine fixtures: the demo model is written once per test session and loaded once."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# Tests never reach the hub; set before huggingface_hub/transformers read their environment.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


@pytest.fixture(scope="session")
def demo_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo model set (seed 0) written into a session temp folder. Treat as read-only."""
    from engine.demo_model import write_demo_model

    return write_demo_model(tmp_path_factory.mktemp("demo-model") / "demo", seed=0)


@pytest.fixture(scope="session")
def demo_models(demo_model_dir: Path):
    """`load_models(demo_model_dir)` on the CPU in fp32, shared by the session. Treat as read-only."""
    from engine.models import load_models

    return load_models(demo_model_dir, device="cpu")

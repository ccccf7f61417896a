"""Shared engine fixtures: the tiny random model is written once per test session and loaded once
(fast tests of the machinery; the trained demo model's behaviour is tested in test_shapes_edits)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# Tests never reach the hub; set before huggingface_hub/transformers read their environment.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


@pytest.fixture(scope="session")
def random_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny random model set (seed 0) written into a session temp folder. Treat as read-only."""
    from engine.random_model import write_random_model

    return write_random_model(tmp_path_factory.mktemp("demo-model") / "demo", seed=0)


@pytest.fixture(scope="session")
def random_models(random_model_dir: Path):
    """`load_models(random_model_dir)` on the CPU in fp32, shared by the session. Treat as read-only."""
    from engine.models import load_models

    return load_models(random_model_dir, device="cpu")

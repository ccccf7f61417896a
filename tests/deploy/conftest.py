"""Fixtures for the deployment tests (helpers live in tools.py)."""

from __future__ import annotations

import pytest

from tests.deploy.tools import OVERLAYS, render


@pytest.fixture(params=OVERLAYS)
def overlay(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def manifests(overlay: str) -> list[dict]:
    return render(overlay)

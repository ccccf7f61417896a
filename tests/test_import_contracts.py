"""ARCHITECTURE.md's package boundaries hold in the source tree (tests/import_contracts.py), and the
checker finds each kind of break in a small synthetic tree."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.import_contracts import cycles, imports, violations

REPO = Path(__file__).resolve().parents[1]


def test_the_source_tree_keeps_every_import_contract() -> None:
    assert violations(REPO) == []


def test_the_client_command_loads_no_torch_in_a_fresh_process() -> None:
    code = "import sys, diffeditor.cli, diffeditor.submit, diffeditor.client; print(sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'engine', 'worker')))"
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stdout.strip() == "[]", done.stdout + done.stderr


def test_the_checker_sees_the_project_modules() -> None:
    found = imports(REPO)
    sources = {imp.source for imp in found}
    assert {"engine.editor", "service.app", "worker.jobs", "diffeditor.serve"} <= sources
    # the lazy embedded path is seen (and allowed) where it now lives
    assert any(i.source == "diffeditor.serve" and i.target == "worker.runtime" and i.lazy for i in found)


def _tree(root: Path, files: dict[str, str]) -> Path:
    clean = {
        "engine/__init__.py": "",
        "engine/a.py": "import torch\n",
        "service/__init__.py": "",
        "service/app.py": "import fastapi\nfrom diffeditor import helpers\n",
        "worker/__init__.py": "",
        "worker/jobs.py": "from service import app\nfrom engine import a\n",
        "diffeditor/__init__.py": "",
        "diffeditor/helpers.py": "import numpy\n",
        "diffeditor/serve.py": "def main():\n    from worker import jobs\n",
    }
    for name, text in {**clean, **files}.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    return root


def test_a_clean_synthetic_tree_passes(tmp_path: Path) -> None:
    assert violations(_tree(tmp_path, {})) == []


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        ({"service/app.py": "import torch\n"}, "service.app:1 imports torch"),
        ({"service/app.py": "def f():\n    from worker import jobs\n"}, "service.app:2 imports worker.jobs"),
        ({"service/app.py": "from engine.a import x\n"}, "service.app:1 imports engine.a"),
        # a torch-free helper that imports torch at module level leaks it into the API
        (
            {"diffeditor/helpers.py": "import diffusers\n"},
            "diffeditor.helpers:1 imports diffusers, and service reaches",
        ),
        ({"diffeditor/client.py": "import torch\n"}, "diffeditor.client:1 imports torch"),
        (
            {
                "diffeditor/submit.py": "from diffeditor import helpers\n",
                "diffeditor/helpers.py": "from engine import a\n",
            },
            "diffeditor.helpers:1 imports engine.a, and diffeditor.submit reaches",
        ),
        ({"engine/a.py": "from fastapi import APIRouter\n"}, "engine.a:1 imports fastapi"),
        ({"engine/a.py": "from ..service import app\n"}, "engine.a:1 imports service.app"),
        ({"engine/a.py": "import redis\n"}, "engine.a:1 imports redis"),
        ({"worker/jobs.py": "import uvicorn\n"}, "worker.jobs:1 imports uvicorn"),
        (
            {"engine/a.py": "from engine import b\n", "engine/b.py": "def f():\n    from engine.a import x\n"},
            "import cycle in engine: engine.a <-> engine.b",
        ),
        (
            {
                "engine/a.py": "from engine.b import x\n",
                "engine/b.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from engine.a import Y\n",
            },
            "import cycle in engine: engine.a <-> engine.b",
        ),
    ],
)
def test_each_forbidden_import_is_found(tmp_path: Path, files: dict[str, str], expected: str) -> None:
    found = violations(_tree(tmp_path, files))
    assert any(v.startswith(expected) for v in found), found


def test_a_lazy_torch_import_in_a_helper_is_not_a_leak(tmp_path: Path) -> None:
    tree = _tree(tmp_path, {"diffeditor/helpers.py": "def f():\n    import torch\n"})
    assert violations(tree) == []


def test_cycles_are_reported_once_per_component(tmp_path: Path) -> None:
    tree = _tree(
        tmp_path,
        {
            "engine/a.py": "import engine.b\n",
            "engine/b.py": "import engine.c\n",
            "engine/c.py": "import engine.a\n",
            "engine/d.py": "import engine.a\n",
        },
    )
    assert cycles(imports(tree), "engine") == [["engine.a", "engine.b", "engine.c"]]

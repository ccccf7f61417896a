"""The README's command-line and Python examples run as written (in a temporary folder, with this
checkout's interpreter for `.venv/bin/`), so they cannot drift from the code."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.doc_snippets import REPO, commands, indented_block

README = (REPO / "README.md").read_text()
BIN = Path(sys.executable).parent


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("readme")


def run(command: str, cwd: Path, timeout: float) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DIFFEDITOR_")}
    env.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", PYTHONPATH=str(REPO))
    command = command.replace(".venv/bin/", f"{BIN}/")
    return subprocess.run(command, shell=True, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


@pytest.mark.slow
def test_command_line_examples_on_the_samples(workdir: Path) -> None:
    cmds = commands(indented_block(README, "On the demo model's sample scenes"))
    assert cmds[0].endswith("diffeditor samples samples") and len(cmds) == 6
    for command in cmds:
        done = run(command, workdir, timeout=300)
        assert done.returncode == 0, f"{command}\n{done.stderr[-2000:]}"
    for name in ("moved", "dragged", "face", "recoloured", "pasted"):
        assert (workdir / f"{name}.png").is_file()


@pytest.mark.slow
def test_python_example_on_the_samples(workdir: Path) -> None:
    if not (workdir / "samples").is_dir():
        assert run(".venv/bin/diffeditor samples samples", workdir, timeout=60).returncode == 0
    (workdir / "example.py").write_text(indented_block(README, "After `diffeditor samples samples`"))
    done = run(".venv/bin/python example.py", workdir, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert (workdir / "dragged.png").is_file() and "sampling 50 50" in done.stdout

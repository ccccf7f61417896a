"""The Dockerfile: hadolint passes, and the images are what docs/operations.md promises (pinned
bases, a torch-free API, non-root users, a health check, dependencies before code, no weights,
a build context that holds what the build copies and nothing else). No Docker engine is needed."""

from __future__ import annotations

import fnmatch
import re
import subprocess
import sys
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from tests.deploy.tools import ROOT, run, tool

DOCKERFILE = ROOT / "Dockerfile"
TARGETS = ("api", "worker", "worker-cpu")
REQS_SCRIPT = ROOT / "deploy" / "docker" / "pyproject_requirements.py"
CONSTRAINTS = ROOT / "deploy" / "docker" / "constraints.txt"


@dataclass
class Stage:
    name: str
    base: str  # resolved image or the name of an earlier stage
    instructions: list[tuple[str, str]] = field(default_factory=list)  # (INSTRUCTION, arguments)

    def all(self, instruction: str) -> list[str]:
        return [args for ins, args in self.instructions if ins == instruction]


def parse_dockerfile(text: str) -> tuple[dict[str, str], list[Stage]]:
    """Global ARG defaults and the stages, with line continuations joined and comments dropped."""
    logical, buf = [], ""
    for line in text.splitlines():
        if not buf and line.lstrip().startswith("#"):
            continue
        if line.rstrip().endswith("\\"):
            buf += line.rstrip()[:-1] + " "
            continue
        logical.append(buf + line)
        buf = ""
    global_args: dict[str, str] = {}
    stages: list[Stage] = []
    for line in (x.strip() for x in logical):
        if not line or line.startswith("#"):
            continue
        instruction, _, args = line.partition(" ")
        instruction, args = instruction.upper(), args.strip()
        if instruction == "FROM":
            parts = re.split(r"\s+AS\s+", args, flags=re.I)
            image, name = parts[0], parts[1] if len(parts) > 1 else f"stage{len(stages)}"
            image = re.sub(r"\$\{(\w+)\}", lambda m: global_args[m.group(1)], image)
            stages.append(Stage(name=name, base=image))
        elif not stages:
            assert instruction == "ARG", f"only ARG may precede the first FROM, got {line}"
            key, _, value = args.partition("=")
            global_args[key] = value
        else:
            stages[-1].instructions.append((instruction, args))
    return global_args, stages


@pytest.fixture(scope="module")
def stages() -> dict[str, Stage]:
    _, parsed = parse_dockerfile(DOCKERFILE.read_text())
    return {s.name: s for s in parsed}


def chain(stages: dict[str, Stage], target: str) -> list[Stage]:
    """The target and the stages it is built FROM, target first."""
    out = [stages[target]]
    while out[-1].base in stages:
        out.append(stages[out[-1].base])
    return out


def arg_default(stage: Stage, name: str) -> str:
    for args in stage.all("ARG"):
        key, _, value = args.partition("=")
        if key == name:
            return value
    raise AssertionError(f"no ARG {name} in stage {stage.name}")


def test_hadolint_passes() -> None:
    result = run([tool("hadolint"), "--no-color", str(DOCKERFILE)])
    assert result.returncode == 0, result.stdout + result.stderr


def test_targets_exist_on_pinned_bases(stages: dict[str, Stage]) -> None:
    assert set(TARGETS) <= set(stages)
    for stage in stages.values():
        if stage.base in stages:
            continue
        image, _, digest = stage.base.partition("@")
        tag = image.rsplit("/", 1)[-1].partition(":")[2]
        assert digest.startswith("sha256:") or re.fullmatch(r"v?[0-9]+\.[0-9]+\.[0-9]+[\w.-]*", tag), (
            f"stage {stage.name}: base {stage.base} is not pinned to a full version"
        )


def test_api_image_has_no_torch_and_no_engine_extra(stages: dict[str, Stage]) -> None:
    for stage in chain(stages, "api"):
        for args in stage.all("RUN"):
            assert "torch" not in args and "engine" not in args, f"stage {stage.name}: {args}"
    assert stages["api"].base == "slim" and stages["slim"].base.startswith("python:")
    assert "-slim" in stages["slim"].base


def test_api_image_checks_health_and_serves(stages: dict[str, Stage]) -> None:
    api = stages["api"]
    (health,) = api.all("HEALTHCHECK")
    assert "/healthz" in health and "urllib" in health  # slim has no curl
    (cmd,) = api.all("CMD")
    assert cmd == '["diffeditor", "serve", "--host", "0.0.0.0", "--port", "8000"]'
    assert api.all("EXPOSE") == ["8000"]


@pytest.mark.parametrize("target", TARGETS)
def test_images_run_as_a_non_root_user(stages: dict[str, Stage], target: str) -> None:
    users = [args for s in reversed(chain(stages, target)) for args in s.all("USER")]
    assert users, f"{target} never switches away from root"
    uid = users[-1].split(":")[0]
    assert uid.isdigit() and int(uid) > 0, f"{target}: USER {users[-1]} (numeric, so runAsNonRoot can verify it)"


@pytest.mark.parametrize("target", TARGETS)
def test_dependencies_are_installed_before_the_code_is_copied(stages: dict[str, Stage], target: str) -> None:
    ins = stages[target].instructions
    deps = [i for i, (name, args) in enumerate(ins) if name == "RUN" and "--requirement requirements.txt" in args]
    code = [i for i, (name, args) in enumerate(ins) if name == "COPY" and "--from=wheel" in args]
    assert deps and code and max(deps) < min(code), f"{target}: a code change would reinstall every dependency"
    assert "--constraint constraints.txt" in ins[deps[0]][1], f"{target}: dependency versions not pinned"


def test_worker_is_cuda_with_pinned_cuda_torch_and_a_weight_check(stages: dict[str, Stage]) -> None:
    worker = stages["worker"]
    assert worker.base.startswith("nvidia/cuda:") and "runtime" in worker.base
    assert re.fullmatch(r"\d+\.\d+\.\d+", arg_default(worker, "TORCH_VERSION"))
    assert re.fullmatch(r"https://download\.pytorch\.org/whl/cu\d+", arg_default(worker, "TORCH_INDEX_URL"))
    (torch_install,) = [a for a in worker.all("RUN") if "torch==" in a]
    assert '"torch==${TORCH_VERSION}"' in torch_install and "${TORCH_INDEX_URL}" in torch_install
    assert "engine" in torch_install  # the engine extra, after torch
    cpu = stages["worker-cpu"]
    assert any("whl/cpu" in a and "torch==${TORCH_VERSION}" in a for a in cpu.all("RUN"))
    for target in ("worker", "worker-cpu"):
        stage = stages[target]
        assert stage.all("ENTRYPOINT") == ['["diffeditor-worker-entrypoint"]']
        assert stage.all("CMD") == ['["diffeditor", "worker"]']
        copies = " ".join(stage.all("COPY"))
        assert "worker-entrypoint.sh /usr/local/bin/diffeditor-worker-entrypoint" in copies
        assert "worker_ready.py /usr/local/bin/diffeditor-worker-ready" in copies


def test_no_weights_are_baked_in(stages: dict[str, Stage]) -> None:
    text = " ".join(args for s in stages.values() for _, args in s.instructions)
    assert "models download" not in text and "demo-model" not in text
    assert not re.search(r"\.(safetensors|ckpt|bin)\b", text)
    assert not re.search(r"COPY\s+\S*models", text)


# ---------------------------------------------------------------------------- build context


def dockerignored(path: str, patterns: list[str]) -> bool:
    """Docker's rule: the last pattern matching the path or one of its parents decides."""
    parts = path.split("/")
    candidates = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    excluded = False
    for pattern in patterns:
        negate = pattern.startswith("!")
        pat = pattern.lstrip("!").rstrip("/")
        for cand in candidates:
            if fnmatch.fnmatchcase(cand, pat) or (pat.startswith("**/") and fnmatch.fnmatchcase(cand, pat[3:])):
                excluded = not negate
                break
    return excluded


def test_build_context_holds_what_the_build_copies_and_no_weights_but_the_demo_model(stages: dict[str, Stage]) -> None:
    patterns = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert patterns[0] == "*", "exclude everything, then list what the build needs"
    sources = []
    for stage in stages.values():
        for args in stage.all("COPY"):
            words = [w for w in args.split() if not w.startswith("--")]
            if "--from=" not in args:
                sources += words[:-1]
    assert sources
    for src in sources:
        assert (ROOT / src).exists(), f"COPY {src}: no such file in the repository"
        assert not dockerignored(src, patterns), f"COPY {src} is excluded by .dockerignore"
    for leaked in (".venv/bin/python", "data/x.png", ".git/HEAD", "tests/deploy/conftest.py", "m/unet.safetensors"):
        assert dockerignored(leaked, patterns), f"{leaked} would be sent to the build"
    shipped = "engine/weights/shapes/unet/diffusion_pytorch_model.safetensors"  # the package's demo model
    assert (ROOT / shipped).is_file() and not dockerignored(shipped, patterns)


# ------------------------------------------------------------------------ pinned dependencies


def requirements(*extras: str) -> list[str]:
    out = subprocess.run([sys.executable, str(REQS_SCRIPT), *extras], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    return [line for line in out.stdout.splitlines() if line.strip()]


def test_requirements_script_separates_the_api_from_the_engine() -> None:
    base = {Requirement(r).name for r in requirements()}
    engine = {Requirement(r).name for r in requirements("engine")}
    assert "torch" not in base and "fastapi" in base
    assert {"torch", "diffusers"} <= engine
    bad = subprocess.run([sys.executable, str(REQS_SCRIPT), "nope"], capture_output=True, text=True, cwd=ROOT)
    assert bad.returncode != 0 and "no extra 'nope'" in bad.stderr


def test_constraints_pin_every_requirement_within_pyproject_ranges() -> None:
    pins = {}
    for line in CONSTRAINTS.read_text().splitlines():
        if line and not line.startswith("#"):
            req = Requirement(line)
            (spec,) = req.specifier
            assert spec.operator == "==", line
            pins[req.name.lower().replace("_", "-")] = spec.version
    assert "torch" not in pins, "torch is pinned by the Dockerfile (its CUDA build differs)"
    for line in requirements("engine"):
        req = Requirement(line)
        name = req.name.lower().replace("_", "-")
        if name == "torch":
            continue
        assert name in pins, f"{name} is not pinned in {CONSTRAINTS.name}: regenerate it (see its header)"
        assert req.specifier.contains(pins[name], prereleases=True), f"{name}=={pins[name]} violates {req}"


def test_wheel_carries_the_package_data_the_code_reads(tmp_path: Path) -> None:
    """The images install the project's wheel: files outside *.py (engine configs, the web page)
    must be in it, or the image breaks where the editable checkout works."""
    out = run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp_path), "."]
    )
    assert out.returncode == 0, out.stderr
    (wheel,) = tmp_path.glob("diffeditor-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    data = [
        p.relative_to(ROOT).as_posix()
        for package in ("diffeditor", "engine", "service", "worker")
        for p in (ROOT / package).rglob("*")
        if p.is_file() and p.suffix not in {".py", ".pyc"} and "__pycache__" not in p.parts
    ]
    assert data, "expected some package data (engine configs, web page)"
    missing = sorted(set(data) - names)
    assert not missing, f"not in the wheel (add them to [tool.setuptools.package-data]): {missing}"

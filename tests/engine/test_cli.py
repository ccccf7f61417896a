"""`diffeditor edit` end to end on the tiny random model, and its one-line errors for bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from engine.cli import main
from tests.engine.images import box_mask, exif_rotated, scene


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("cli")
    paths = {
        "image": d / "image.png",
        "mask": d / "mask.png",
        "reference": d / "reference.png",
        "reference_mask": d / "reference_mask.png",
        "small_mask": d / "small_mask.png",
        "empty_mask": d / "empty_mask.png",
        "text": d / "notes.png",
    }
    scene().save(paths["image"])
    box_mask().save(paths["mask"])
    scene(seed=2, box=(60, 40, 120, 100)).save(paths["reference"])
    box_mask(box=(60, 40, 120, 100)).save(paths["reference_mask"])
    box_mask(80, 60, (10, 10, 30, 30)).save(paths["small_mask"])
    Image.new("L", (160, 120)).save(paths["empty_mask"])
    paths["text"].write_text("not an image")
    return paths


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    try:
        code = main(argv)
    except SystemExit as exc:
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


COMMON = ["--steps", "4", "--max-resolution", "64", "--seed", "5"]


@pytest.mark.parametrize(
    ("task", "args"),
    [
        ("move", ["--mask", "{mask}", "--offset", "20,5", "--scale", "1.2"]),
        ("drag", ["--mask", "{mask}", "--points", "50,40:70,50", "--points", "80,70:84,60"]),
        ("landmark", ["--points", "50,40:56,44"]),
        ("appearance", ["--mask", "{mask}", "--reference", "{reference}", "--reference-mask", "{reference_mask}",
                        "--prompt", "a box", "--reference-prompt", "a red box"]),
        ("paste", ["--reference", "{reference}", "--reference-mask", "{reference_mask}", "--offset", "-20,-10",
                   "--scale", "0.8"]),
    ],
)  # fmt: skip
def test_each_task_runs(
    task: str, args: list[str], files: dict[str, Path], random_model_dir: Path, tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    out_png, stats = tmp_path / "out.png", tmp_path / "stats.json"
    argv = ["edit", task, "--image", str(files["image"]), *[a.format(**files) for a in args], *COMMON,
            "--model", str(random_model_dir), "--output", str(out_png), "--stats", str(stats)]  # fmt: skip
    code, out, err = run(argv, capsys)
    assert code == 0, err
    assert "tiny-random model" in err  # said wherever it is used
    assert Image.open(out_png).size == (160, 120)
    data = json.loads(stats.read_text())
    assert data["working_size"] == [64, 64] and data["seed"] == 5
    assert set(data["seconds"]) == {"preprocess", "image_prompt", "inversion", "sampling", "decode", "total"}
    assert set(data["evaluations"]) == {"inversion", "sampling", "guidance_forward", "guidance_backward", "rollback"}
    assert data["inversion_cached"] is False
    assert data["cache_bytes"] > 0
    assert 0 < data["unet_equivalents"] < data["release_unet_equivalents"]


@pytest.mark.parametrize(
    ("argv", "field"),
    [
        (["edit", "move", "--image", "{missing}", "--mask", "{mask}", "--offset", "1,1"], "image"),
        (["edit", "move", "--image", "{text}", "--mask", "{mask}", "--offset", "1,1"], "image"),
        (["edit", "move", "--image", "{image}", "--mask", "{small_mask}", "--offset", "1,1"], "mask"),
        (["edit", "move", "--image", "{image}", "--mask", "{empty_mask}", "--offset", "1,1"], "mask"),
        (["edit", "move", "--image", "{image}", "--mask", "{mask}", "--offset", "1,1", "--scale", "0"], "scale"),
        (["edit", "move", "--image", "{image}", "--mask", "{mask}", "--offset", "1,1", "--scale", "11"], "scale"),
        (["edit", "move", "--image", "{image}", "--mask", "{mask}", "--offset", "500,0"], "offset"),
        (["edit", "drag", "--image", "{image}", "--mask", "{mask}", "--points", "10,10:170,10"], "points"),
        (["edit", "landmark", "--image", "{image}", "--points", "-1,10:20,10"], "points"),
        (["edit", "landmark", "--image", "{image}", "--points", "1,1:2,2", "--steps", "-3"], "steps"),
        (["edit", "landmark", "--image", "{image}", "--points", "1,1:2,2", "--prompt", "a" * 300_000], "prompt"),
        (["edit", "paste", "--image", "{image}", "--reference", "{reference}", "--reference-mask", "{reference_mask}",
          "--reference-prompt", "é" * 5000], "reference_prompt"),
        (["edit", "paste", "--image", "{image}", "--reference", "{reference}", "--reference-mask", "{reference_mask}",
          "--offset", "0,0", "--scale", "2"], "scale"),
        (["edit", "paste", "--image", "{image}", "--reference", "{reference}", "--reference-mask", "{reference_mask}",
          "--offset", "400,0"], "offset"),
        (["edit", "appearance", "--image", "{image}", "--mask", "{mask}", "--reference", "{reference}",
          "--reference-mask", "{small_mask}"], "reference_mask"),
        (["edit", "move", "--image", "{image}", "--mask", "{mask}", "--offset", "1,1", "--w-nonsense", "3"], "unrecognized"),
        (["edit", "landmark", "--image", "{image}", "--points", "1,1:2,2", "--w-content", "3"], "unrecognized"),
        (["edit", "move", "--image", "{image}", "--mask", "{mask}", "--offset", "1;1"], "offset"),
        (["edit", "rotate", "--image", "{image}"], "invalid choice"),
    ],
)  # fmt: skip
def test_bad_input_is_one_line_naming_the_field(
    argv: list[str], field: str, files: dict[str, Path], random_model_dir: Path, tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    out_png = tmp_path / "out.png"
    paths = {**{k: str(v) for k, v in files.items()}, "missing": str(tmp_path / "nope.png")}
    argv = [a.format(**paths) for a in argv]
    full = [*argv[:2], *COMMON, *argv[2:], "--model", str(random_model_dir), "--output", str(out_png)]
    code, out, err = run(full, capsys)
    assert code != 0
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert field in lines[0] and "Traceback" not in err
    assert not out_png.exists()  # nothing is written


def test_console_script_in_a_fresh_process(files: dict[str, Path], random_model_dir: Path, tmp_path: Path) -> None:
    out_png = tmp_path / "out.png"
    proc = subprocess.run(
        [sys.executable, "-m", "diffeditor", "edit", "landmark", "--image", str(files["image"]),
         "--points", "50,40:56,44", "--model", str(random_model_dir), "--output", str(out_png), *COMMON],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "wrote" in proc.stdout and Image.open(out_png).size == (160, 120)


def test_demo_model_command_and_offline_download(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["demo-model", str(tmp_path / "demo")], capsys)
    assert code == 0 and "shapes world" in out
    marker = json.loads((tmp_path / "demo" / "demo_model.json").read_text())
    assert marker["name"] == "diffeditor-shapes" and marker["random_weights"] is False
    code, out, _ = run(["demo-model", "--random", str(tmp_path / "random")], capsys)
    assert code == 0 and (tmp_path / "random" / "model_index.json").exists() and "random weights" in out
    code, _, err = run(["models", "download", str(tmp_path / "real")], capsys)
    assert code == 1 and "offline" in err.lower()


def test_an_exif_rotated_photo_with_a_mask_drawn_as_shown(
    random_model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # A portrait photo stored lying down (128x96, EXIF orientation 6) and its mask drawn on it as
    # shown (96x128): the API accepted it; the CLI refused "mask 96x128 does not match image 128x96".
    photo, mask, out_png = tmp_path / "photo.jpg", tmp_path / "mask.png", tmp_path / "out.png"
    photo.write_bytes(exif_rotated(scene(96, 128, box=(20, 70, 60, 110))))
    box_mask(96, 128, (20, 70, 60, 110)).save(mask)
    argv = ["edit", "move", "--image", str(photo), "--mask", str(mask), "--offset", "10,-20", *COMMON,
            "--model", str(random_model_dir), "--output", str(out_png)]  # fmt: skip
    code, _, err = run(argv, capsys)
    assert code == 0, err
    assert Image.open(out_png).size == (96, 128)  # the photo as shown

"""`diffeditor edit|demo-model|models`: the engine's command line.

The task flags are `diffeditor.edit_flags`' (generated from the task parameter models in
`diffeditor.tasks`, shared with the torch-free `diffeditor submit`). Bad input exits non-zero with one line naming the field and the rule, and
nothing is written.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from diffeditor.edit_flags import Parser, attach_negative_values, fail, file_args, params_from_args, task_parser
from engine.compiled import COMPILE_MODES

DEMO_NOTE = (
    "note: the demo model is a small model trained on a shapes world (flat-coloured shapes and cartoon faces); "
    "load SD1.5 for photographs"
)
RANDOM_NOTE = "note: the tiny-random model has random weights; its output proves the machinery, not quality"


def _edit_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", default="demo", help="model folder, hub id, checkpoint file, or 'demo'")
    p.add_argument("--output", required=True, type=Path, help="output PNG")
    p.add_argument("--stats", type=Path, help="write per-stage statistics JSON here")
    p.add_argument("--device", help="cuda or cpu (default: cuda when available)")
    p.add_argument("--dtype", choices=["fp16", "bf16", "fp32"], help="default fp16 on CUDA, fp32 on CPU")
    add_editor_options(p)


def _edit_parser() -> argparse.ArgumentParser:
    return task_parser("diffeditor edit", "Run one DiffEditor edit.", _edit_options)


def add_editor_options(p: argparse.ArgumentParser) -> None:
    """The `engine.Editor` options as flags (`diffeditor edit`, bench/edit.py); `editor_options`
    reads them back. The settings of the same names are in service/settings.py."""
    p.add_argument(
        "--batched-backward",
        action="store_true",
        help="both guidance gradients from one batched backward pass (default: two, as the release)",
    )
    p.add_argument(
        "--kv-offload",
        action="store_true",
        help="keep the K/V bank in pinned host memory and prefetch each step's to the GPU",
    )
    p.add_argument(
        "--compile",
        choices=COMPILE_MODES,
        default="off",
        help="torch.compile mode of the sampling UNet (default off; compiling takes minutes)",
    )
    p.add_argument("--channels-last", action="store_true", help="the UNet in NHWC layout")


def editor_options(args: argparse.Namespace) -> dict[str, Any]:
    return {name: getattr(args, name) for name in ("batched_backward", "kv_offload", "compile", "channels_last")}


def _load_image(name: str, path: str) -> Any:
    """The file decoded by the same rules as an API upload (`diffeditor.inputs`): format by
    content, EXIF orientation applied."""
    from diffeditor.inputs import InputError, open_image

    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        fail(name, f"file {path} does not exist")
    except OSError as exc:
        fail(name, f"cannot read {path} ({exc.__class__.__name__})")
    try:
        return open_image(name, data)
    except InputError as exc:
        fail(name, f"{path}: {exc.message}")


def run_edit(argv: list[str]) -> int:
    args = _edit_parser().parse_args(attach_negative_values(argv))
    params = params_from_args(args)
    files = {n: _load_image(n, path) for n, path in file_args(args).items()}
    if args.output.suffix.lower() not in (".png", ".jpg", ".jpeg", ".webp"):
        fail("output", "must end in .png, .jpg or .webp")

    import engine

    try:
        request = engine.request_from_files(params, files)
        request.validate()  # before the (slow) model load
        models = engine.load_models(args.model, device=args.device, dtype=args.dtype)
        result = engine.Editor(models, **editor_options(args)).edit(request)
    except engine.InvalidInput as exc:
        fail(exc.field, exc.message)
    except engine.EngineError as exc:
        print(f"diffeditor: {exc.code}: {exc}", file=sys.stderr)
        return 1
    args.output.parent.mkdir(parents=True, exist_ok=True)
    result.image.save(args.output)
    if args.stats:
        args.stats.write_text(json.dumps({**result.stats.to_dict(), "seed": result.seed}, indent=2))
    if models.is_demo:
        print(RANDOM_NOTE if models.random_weights else DEMO_NOTE, file=sys.stderr)
    print(f"wrote {args.output} (seed {result.seed})")
    return 0


def main(argv: list[str]) -> int:
    command, rest = argv[0], argv[1:]
    if command == "edit":
        return run_edit(rest)
    import engine

    if command == "demo-model":
        parser = Parser(
            prog="diffeditor demo-model", description="Write the demo model set (the trained shapes-world model)."
        )
        parser.add_argument("dir", type=Path)
        parser.add_argument("--random", action="store_true", help="write the tiny random-weight test model instead")
        args = parser.parse_args(rest)
        if args.random:
            from engine.random_model import write_random_model

            write_random_model(args.dir)
            print(f"wrote the tiny random model to {args.dir} ({RANDOM_NOTE.removeprefix('note: ')})")
            return 0
        from engine.shapes_model import write_shapes_model

        try:
            write_shapes_model(args.dir)
        except engine.ModelLoadError as exc:
            print(f"diffeditor: {exc}", file=sys.stderr)
            return 1
        print(f"wrote the demo model to {args.dir} ({DEMO_NOTE.removeprefix('note: ')})")
        return 0
    if command == "train-demo":
        from engine.train_demo import main as train_main

        return train_main(rest)
    if command == "models":
        parser = Parser(prog="diffeditor models", description="Manage model weights.")
        parser.add_argument("action", choices=["download"])
        parser.add_argument("dir", type=Path)
        args = parser.parse_args(rest)
        from engine.download import download_models

        try:
            download_models(args.dir)
        except engine.ModelLoadError as exc:
            print(f"diffeditor: {exc}", file=sys.stderr)
            return 1
        print(f"downloaded the model set to {args.dir}")
        return 0
    print(f"diffeditor: unknown command {command!r}", file=sys.stderr)
    return 2

"""Edit quality against rendered ground truth, on the shapes world.

    python bench/quality.py [--cases 6] [--steps 50] [--size 128] [--tasks move,drag,...]
                            [--configs default,baseline,...] [--json OUT.json]

For every task (move, resize, drag, landmark, appearance, paste) it draws `--cases` scenes of the
shapes world (diffeditor.cases: fixed seeds, so every run sees the same cases), runs each through
the engine, renders the ground truth and prints the median of each figure per task and config:

    psnr_truth      PSNR against the ground-truth render (dB)
    psnr_bg         PSNR against the input outside the edit region: background kept (dB)
    pos_err         move/resize/paste: distance from the object's colour centroid to where it should be (px)
    vacated         move/resize: fraction of the vacated area still in the object's colour
    scale_err       resize: |achieved linear scale − requested| / requested (from colour areas)
    edge_err        drag: distance from the dragged edge to its target (px)
    eye_err         landmark: distance from the moved eye to its target (px)
    colour_dist     appearance: RGB distance (0–441) of the object region's mean to the reference colour
    shape_iou       appearance: IoU of the new-colour pixels with the object's silhouette

Configs, side by side: `baseline` (the input returned unchanged), `default` (the demo model at the
task's defaults), `random` (the tiny random-weight model), and the paper's ablations on the demo
model: `no-guidance` (s_E = 0: no guidance, no time travel), `ode` (η = 0: no regional SDE),
`no-time-travel`, `no-image-prompt` (λ_ip = 0). It also prints VAE reconstruction and
inversion-then-reconstruction PSNR of the inputs (no edit). A bench, not a test: it prints.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from diffeditor import world  # noqa: E402
from diffeditor.cases import CASE_TASKS, Case, grow, make_case  # noqa: E402
from diffeditor.tasks import parse_params  # noqa: E402

CONFIGS = ("baseline", "default", "random", "no-guidance", "ode", "no-time-travel", "no-image-prompt")
COLOUR_TOLERANCE = 60.0


# --- measuring one output ---------------------------------------------------------------------


def _colour(out: np.ndarray, case: Case) -> np.ndarray:
    assert case.colour is not None
    return world.colour_mask(out, case.colour, COLOUR_TOLERANCE)


def _dist(a: tuple[float, float] | None, b: tuple[float, float] | None, size: int) -> float:
    if a is None or b is None:
        return float(size)  # the object vanished: as far off as the canvas is wide
    return float(np.hypot(a[0] - b[0], a[1] - b[1]))


def _edge(mask: np.ndarray, case: Case) -> float | None:
    """The dragged edge in the output: per row (or column) of the object's middle band, the far
    end of the object's colour; their median."""
    assert case.source_mask is not None and case.target is not None
    ys, xs = np.nonzero(case.source_mask)
    axis = case.extra["axis"]
    if axis == "x":
        lo, hi = np.percentile(ys, [30, 70])
        lines = [np.nonzero(mask[y, :])[0] for y in range(int(lo), int(hi) + 1)]
    else:
        lo, hi = np.percentile(xs, [30, 70])
        lines = [np.nonzero(mask[:, x])[0] for x in range(int(lo), int(hi) + 1)]
    ends = [float(line.max()) for line in lines if len(line)]
    return statistics.median(ends) if ends else None


def _eye(out: np.ndarray, case: Case) -> tuple[float, float] | None:
    """Centroid of the eye-coloured pixels nearer the moved eye's target than the other eye."""
    dark = world.colour_mask(out, world.EYE, COLOUR_TOLERANCE)
    ys, xs = np.nonzero(dark)
    if not len(xs):
        return None
    tx, ty = case.target  # type: ignore[misc]
    ox, oy = case.extra["other_eye"]
    fx, fy = case.extra["eye_from"]
    reach = 2.5 * np.hypot(tx - fx, ty - fy) + 3 * case.extra["eye_radius"]
    d_t = np.hypot(xs - tx, ys - ty)
    keep = (d_t < np.hypot(xs - ox, ys - oy)) & (d_t < reach) & (ys < case.size * 0.9)
    mouth_y = case.params["points"][2][1]
    keep &= ys < mouth_y - case.extra["eye_radius"]  # the mouth arc is dark too
    if not keep.any():
        return None
    return float(xs[keep].mean()), float(ys[keep].mean())


def measure(case: Case, output: Image.Image) -> dict[str, float]:
    out = np.asarray(output.convert("RGB"))
    inp = np.asarray(case.images["image"].convert("RGB"))
    fig: dict[str, float] = {"psnr_truth": world.psnr(out, case.truth)}
    if case.keep_mask is not None:
        fig["psnr_bg"] = world.psnr(out, inp, case.keep_mask)
    if case.task in ("move", "resize", "paste"):
        mask = _colour(out, case)
        fig["pos_err"] = _dist(world.centroid(mask), case.target, case.size)
        if case.task != "paste":
            assert case.source_mask is not None and case.truth_mask is not None
            vac = case.source_mask & ~grow(case.truth_mask)
            fig["vacated"] = float(mask[vac].mean()) if vac.any() else 0.0
        if case.task == "resize":
            before = _colour(inp, case).sum()
            scale = float(np.sqrt(mask.sum() / max(before, 1)))
            fig["scale_err"] = abs(scale - case.extra["scale"]) / case.extra["scale"]
    elif case.task == "drag":
        edge = _edge(_colour(out, case), case)
        target = case.target[0] if case.extra["axis"] == "x" else case.target[1]  # type: ignore[index]
        fig["edge_err"] = abs(edge - target) if edge is not None else float(case.size)
    elif case.task == "landmark":
        fig["eye_err"] = _dist(_eye(out, case), case.target, case.size)
    elif case.task == "appearance":
        assert case.source_mask is not None and case.colour is not None
        inner = case.source_mask & ~grow(~case.source_mask)
        mean = out[inner].reshape(-1, 3).mean(axis=0)
        fig["colour_dist"] = float(np.linalg.norm(mean - np.asarray(case.colour, np.float64)))
        new = _colour(out, case)
        union = (new | case.source_mask).sum()
        fig["shape_iou"] = float((new & case.source_mask).sum() / union) if union else 0.0
    return fig


# --- running ----------------------------------------------------------------------------------


def request_for(case: Case, overrides: dict) -> object:
    import engine

    params = parse_params({**case.params, **overrides})
    files = {k: v for k, v in case.images.items()}
    return engine.request_from_files(params, files)


def run_config(config: str, cases: list[Case], steps: int, editors: dict, seed: int) -> list[dict]:
    overrides = {"steps": steps, "seed": seed, "max_resolution": cases[0].size if cases else 128}
    rows = []
    for case in cases:
        t0 = time.perf_counter()
        if config == "baseline":
            output = case.images["image"]
        else:
            extra = dict(overrides)
            if config == "no-guidance":
                extra["guidance_strength"] = 0.0
            elif config == "ode":
                extra["sde_strength"] = 0.0
            elif config == "no-image-prompt":
                extra["ip_scale"] = 0.0
            editor = editors[{"random": "random", "no-time-travel": "no-tt"}.get(config, "demo")]
            output = editor.edit(request_for(case, extra)).image
        rows.append({"case": case.name, "task": case.task, "s": time.perf_counter() - t0, **measure(case, output)})
        if os.environ.get("QUALITY_SAVE"):
            folder = Path(os.environ["QUALITY_SAVE"]) / config
            folder.mkdir(parents=True, exist_ok=True)
            output.save(folder / f"{case.name}.png")
            case.truth.save(folder / f"{case.name}.truth.png")
    return rows


def reconstruction(cases: list[Case], steps: int, editor: object) -> dict[str, float]:
    from engine.preprocess import to_image, to_tensor, vae_decode, vae_encode

    vae, inv = [], []
    for case in cases:
        image = case.images["image"]
        x = to_tensor(image, editor.device, editor.models.dtype)  # type: ignore[attr-defined]
        recon = to_image(vae_decode(editor.models.vae, vae_encode(editor.models.vae, x)))  # type: ignore[attr-defined]
        vae.append(world.psnr(recon, image))
        again = editor.reconstruct(image, case.params["prompt"], steps=steps, max_resolution=case.size)  # type: ignore[attr-defined]
        inv.append(world.psnr(again, image))
    return {"vae_psnr": statistics.median(vae), "inversion_psnr": statistics.median(inv)}


def summarize(rows: list[dict]) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    for task in CASE_TASKS:
        mine = [r for r in rows if r["task"] == task]
        if not mine:
            continue
        keys = [k for k in mine[0] if k not in ("case", "task")]
        out[task] = {k: round(statistics.median(r[k] for r in mine), 3) for k in keys}
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=6, help="cases per task (default 6)")
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--size", type=int, default=128, help="canvas and working size (default 128)")
    parser.add_argument("--tasks", default=",".join(CASE_TASKS))
    parser.add_argument("--configs", default=",".join(CONFIGS))
    parser.add_argument("--seed", type=int, default=0, help="the edits' seed (the cases are fixed)")
    parser.add_argument("--model", default="demo", help="model for all but the random config (default demo)")
    parser.add_argument("--json", type=Path, help="also write every row and the summary here")
    args = parser.parse_args(argv)
    tasks = [t for t in args.tasks.split(",") if t]
    configs = [c for c in args.configs.split(",") if c]
    unknown = sorted(set(tasks) - set(CASE_TASKS)) + sorted(set(configs) - set(CONFIGS))
    if unknown:
        parser.error(f"unknown task or config: {', '.join(unknown)}")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch

    import engine

    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", torch.get_num_threads())))
    models = engine.load_models(args.model, device="cpu")
    editors = {"demo": engine.Editor(models), "no-tt": engine.Editor(models, time_travel=False)}
    if "random" in configs:
        editors["random"] = engine.Editor(engine.load_models("tiny-random", device="cpu"))
    cases = [make_case(task, 1000 + k, args.size) for task in tasks for k in range(args.cases)]
    print(
        f"quality: {len(cases)} cases ({args.cases} per task), {args.steps} steps, {args.size} px, model {args.model}"
    )
    report: dict = {"args": {k: str(v) for k, v in vars(args).items()}, "configs": {}, "rows": {}}
    t0 = time.perf_counter()
    recon = reconstruction(cases[: max(1, min(len(cases), 12))], args.steps, editors["demo"])
    report["reconstruction"] = recon
    print(
        f"reconstruction (no edit): VAE {recon['vae_psnr']:.2f} dB, inversion + DDIM back {recon['inversion_psnr']:.2f} dB"
    )
    for config in configs:
        rows = run_config(config, cases, args.steps, editors, args.seed)
        report["rows"][config] = rows
        report["configs"][config] = summarize(rows)
        print(f"[{config}] done in {time.perf_counter() - t0:.0f} s", flush=True)
    print(format_table(report["configs"]))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    return 0


def format_table(summary: dict[str, dict[str, dict[str, float]]]) -> str:
    """One markdown table per task: configs as rows, figures as columns (medians)."""
    lines = []
    for task in CASE_TASKS:
        per = {c: s[task] for c, s in summary.items() if task in s}
        if not per:
            continue
        keys = [k for k in next(iter(per.values())) if k != "s"] + ["s"]
        lines += [f"\n{task}", "| config | " + " | ".join(keys) + " |", "|---" * (len(keys) + 1) + "|"]
        for config, figs in per.items():
            lines.append(f"| {config} | " + " | ".join(f"{figs.get(k, float('nan')):.2f}" for k in keys) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())

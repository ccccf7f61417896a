"""The cost of step previews: seconds per preview (the latent → RGB projection, and the JPEG and
data: URL the worker makes of it) against seconds per sampling step, and the edit's sampling
time with previews on and off.

    python bench/previews.py [--device cpu] [--steps 20] [--every 5]

Runs a move edit on the demo model at 128 px and on the tiny random model at 512 px (the
engine's own; SD1.5's layout at a fraction of its width), each once to warm up, then with
previews off and on. Prints one line per model. A benchmark: it asserts nothing.
"""

from __future__ import annotations

import argparse
import base64
import io
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import engine  # noqa: E402
from diffeditor.cases import sample  # noqa: E402
from diffeditor.tasks import parse_params  # noqa: E402
from engine.random_model import write_random_model  # noqa: E402


def jpeg_data_url(image: Image.Image) -> str:
    """What the worker publishes (worker/jobs.py): a quality-75 JPEG as a data: URL."""
    buf = io.BytesIO()
    image.save(buf, format="JPEG", quality=75)
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def measure(editor: engine.Editor, size: int, steps: int, every: int) -> dict[str, float]:
    case = sample("move")
    params = parse_params({**case.params, "steps": steps, "seed": 0, "max_resolution": size})
    request = engine.request_from_files(params, dict(case.images))
    editor.edit(request)  # warm-up; the inversion is cached for the two measured runs
    off = editor.edit(request)
    sizes: list[int] = []
    on = editor.edit(request, preview=lambda i, n, im: sizes.append(len(jpeg_data_url(im))), preview_every=every)
    per_step = off.stats.seconds["sampling"] / steps
    per_preview = on.stats.seconds["previews"] / max(1, len(sizes))
    return {
        "step_s": per_step,
        "preview_s": per_preview,
        "previews": len(sizes),
        "data_url_bytes": max(sizes, default=0),
        "share": on.stats.seconds["previews"] / on.stats.seconds["total"],
        "sampling_off_s": off.stats.seconds["sampling"],
        "sampling_on_s": on.stats.seconds["sampling"],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--every", type=int, default=5)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        runs = [
            ("demo", 128, lambda: engine.load_models("demo", device=args.device)),
            ("random", 512, lambda: engine.load_models(write_random_model(Path(tmp) / "random"), device=args.device)),
        ]
        for name, size, load in runs:
            t0 = time.perf_counter()
            r = measure(engine.Editor(load()), size, args.steps, args.every)
            print(
                f"{name:>6} {size} px, {args.steps} steps, a preview every {args.every}: "
                f"{r['step_s'] * 1000:.1f} ms per sampling step, {r['preview_s'] * 1000:.2f} ms per preview "
                f"({r['preview_s'] / r['step_s']:.2%} of a step; {r['share']:.2%} of the edit; "
                f"{r['previews']} previews, data: URL up to {r['data_url_bytes']} bytes); "
                f"sampling {r['sampling_off_s']:.2f} s off, {r['sampling_on_s']:.2f} s on "
                f"[{time.perf_counter() - t0:.0f} s]",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

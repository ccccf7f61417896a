"""The one console script `diffeditor`. It dispatches lazily, so `serve` with REDIS_URL set (the
API-only image) never imports torch: `edit`, `demo-model`, `models` go to the engine, `worker` to
the worker, `webhooks` to the service's webhook deliverer, `submit` to the torch-free client
(`diffeditor.submit`), `serve` to `diffeditor.serve`: the service's API alone, or in embedded mode
(no REDIS_URL) the API with an in-process worker."""

from __future__ import annotations

import sys

USAGE = """usage: diffeditor COMMAND [...]

commands:
  edit TASK ...        run one edit (move, drag, landmark, appearance, paste)
  submit TASK ...      run one edit on a running service (--server URL; the same flags as edit)
  demo-model DIR       write the demo model (trained on the shapes world; --random: the tiny random test model)
  samples DIR          write the sample scenes (images, masks, params.json) the README's examples use
  train-demo OUT       train the demo model from scratch (reproduces the shipped weights)
  models download DIR  fetch the real SD1.5 + image-encoder + image-prompt weights
  serve                run the HTTP API (embedded queue and worker when REDIS_URL is unset)
  worker               run a GPU worker process on REDIS_URL
  webhooks             deliver the queued webhooks of REDIS_URL's jobs (the API does too, by default)
"""


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help", "help"):
        print(USAGE, end="")
        return 0
    command, rest = args[0], args[1:]
    if command in ("edit", "demo-model", "models", "train-demo"):
        from engine.cli import main as engine_main

        return engine_main([command, *rest])
    if command == "submit":
        from diffeditor.submit import main as submit_main

        return submit_main(rest)
    if command == "samples":
        from diffeditor.samples import main as samples_main

        return samples_main(rest)
    if command == "worker":
        from worker.main import main as worker_main

        return worker_main(rest)
    if command == "webhooks":
        from service.webhooks.cli import main as webhooks_main

        return webhooks_main(rest)
    if command == "serve":
        from diffeditor.serve import main as serve_main

        return serve_main(rest)
    print(f"diffeditor: unknown command {command!r}\n\n{USAGE}", file=sys.stderr, end="")
    return 2

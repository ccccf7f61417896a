#!/usr/bin/env bash
# The one-shot GPU benchmark (issue 13): everything into one folder, in about 8 minutes on an H200.
#
#   bash bench/gpu.sh OUTDIR            (on the device machine: OUTDIR=$OUT)
#   bash bench/gpu.sh OUTDIR compiled   (a second command, about 5 minutes: torch.compile against
#                                        eager, move and drag at 512² in bf16: edit-bf16-compiled.md
#                                        (inductor) and edit-bf16-cudagraphs.md (also CUDA graphs);
#                                        inductor's compile time is in its warm-up, not its figures)
#
# Needs torch with CUDA, transformers, safetensors and pillow there; diffusers and pydantic come
# from wheels carried in .wheels/ (ignored by git), made here with
#   .venv/bin/pip download --no-deps -d .wheels "diffusers==$(.venv/bin/python -c 'import diffusers; print(diffusers.__version__)')" \
#       pydantic pydantic-core annotated-types typing-inspection
# and installed there without network.
# Writes into OUTDIR (the device machine returns at most eight files): edit-bf16.md,
# edit-fp16.md (512² and 768², first and repeat edit of every task, peak memory, unet_equivalents;
# bf16 also against the plain release loop), edit-bf16-batched.md (the batched guidance backward),
# edit-bf16-offload.md (K/V banks on the host), profile.txt and cache.json (bench/profile_step.py),
# and all.tar.gz with those, the JSON, the logs and env.txt: seven files.
set -euo pipefail
out=${1:?usage: bash bench/gpu.sh OUTDIR}
mkdir -p "$out"
work=$(mktemp -d)
trap 'tar -C "$work" -czf "$out/all.tar.gz" . ; cp "$work"/*.md "$work"/profile.txt "$work"/cache.json "$out"/ 2>/dev/null || true' EXIT
cd "$(dirname "$0")/.."
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
if ! python -c 'import diffusers' 2>/dev/null; then
  pip install --no-index --no-deps --quiet .wheels/*.whl
fi
{ nvidia-smi; python -c 'import torch, diffusers; print(torch.__version__, torch.version.cuda, diffusers.__version__)'; } \
  > "$work/env.txt" 2>&1 || true
run() {  # seconds, name, then bench/edit.py's flags; a failing configuration does not stop the others
  timeout "$1" python bench/edit.py --config sd15-random-cuda "${@:3}" --json "$work/$2.json" \
    > "$work/$2.md" 2> "$work/$2.err" || echo "$2 failed: see $2.err" | tee -a "$work/failures.txt"
}
if [ "${2:-}" = compiled ]; then
  run 150 edit-bf16-compiled --dtype bf16 --size 512 --tasks move drag --compile default
  run 150 edit-bf16-cudagraphs --dtype bf16 --size 512 --tasks move drag --compile reduce-overhead
  ls -l "$work"
  exit 0
fi
run 150 edit-bf16 --dtype bf16 --release-loop
run 100 edit-fp16 --dtype fp16
run 90 edit-bf16-batched --dtype bf16 --batched-backward
run 90 edit-bf16-offload --dtype bf16 --kv-offload
timeout 80 python bench/profile_step.py --device cuda --dtype bf16 --size 512 --out "$work" \
  > "$work/profile.log" 2>&1 || echo "profile failed: see profile.log" | tee -a "$work/failures.txt"
ls -l "$work"

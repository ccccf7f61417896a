#!/bin/sh
# Entrypoint of the worker image. Fails fast, with a message an operator can act on, when no
# weights are where DIFFEDITOR_MODEL says, instead of dying deep inside model loading or quietly
# serving the demo model's noise. The demo model must be asked for explicitly (DIFFEDITOR_MODEL=demo).
# The image never downloads weights (HF_HUB_OFFLINE=1): they come from a mounted /models or the
# Hugging Face cache volume.
set -eu

die() {
    echo "diffeditor-worker: $*" >&2
    exit 78 # EX_CONFIG: a restart loop will not fix this, the configuration must change
}

model="${DIFFEDITOR_MODEL:-}"
case "$model" in
"")
    die "DIFFEDITOR_MODEL is not set. Mount the weights written by 'diffeditor models download DIR' at /models and set DIFFEDITOR_MODEL=/models, or set DIFFEDITOR_MODEL=demo to run the tiny random-weight demo model (noise-like output, for trying the stack only)."
    ;;
demo)
    echo "diffeditor-worker: DIFFEDITOR_MODEL=demo: running the random-weight DEMO model; outputs are noise-like, never real edits" >&2
    ;;
/* | ./* | ../*)
    if [ -d "$model" ]; then
        [ -f "$model/model_index.json" ] || die "no weights in $model (model_index.json missing). Is the models volume mounted there and filled by 'diffeditor models download $model'?"
    elif [ ! -f "$model" ]; then
        die "DIFFEDITOR_MODEL=$model does not exist in the container. Mount the models volume (read-only is fine) or fix the path."
    fi
    ;;
*)
    # A hub id (org/name): only usable when it is already in the mounted cache.
    cache="${HF_HOME:-$HOME/.cache/huggingface}/hub/models--$(printf '%s' "$model" | sed 's#/#--#g')"
    if [ ! -d "$cache" ] && [ "${HF_HUB_OFFLINE:-0}" = "1" ]; then
        die "DIFFEDITOR_MODEL=$model is not in the Hugging Face cache ($cache) and this image does not download weights. Fill the cache volume, or mount a model folder and set DIFFEDITOR_MODEL=/models."
    fi
    ;;
esac

exec "$@"

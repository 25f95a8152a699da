#!/usr/bin/env bash
# Set up, then run the main job on the embedded default (offline teacher + data).
# Extra arguments go to `bertcompress run`, e.g. `bash scripts/demo.sh --quick`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
. .venv/bin/activate
export HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
# The demo's settings, its time budget among them, are the recipe configs/demo.yaml; flags
# given here win over it.
exec bertcompress run --config configs/demo.yaml "$@"

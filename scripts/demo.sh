#!/usr/bin/env bash
# Set up, then run the main job on the embedded default (offline teacher + data).
# Extra arguments go to `bertcompress run`, e.g. `bash scripts/demo.sh --quick`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
. .venv/bin/activate
export HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
# The demo's time budget (15 minutes on 2 CPU cores, set-up included): the teacher and the student's
# prediction phase stop at 4 and 3 minutes if their validation score has not stopped improving by then
# (`run`'s own caps are 15 and 8). A later --set wins.
exec bertcompress run --output outputs/demo --set finetune.max_minutes=4 --set task_prediction.max_minutes=3 "$@"

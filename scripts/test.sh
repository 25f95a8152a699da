#!/usr/bin/env bash
# Set up, then run the test suite (offline; tiny random models and small files).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
. .venv/bin/activate
export HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
exec python -m pytest tests "$@"

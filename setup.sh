#!/usr/bin/env bash
# Create a Python 3.11 virtual environment with torch 2.13 (CPU), fairseq and this plugin.
# Usage: bash setup.sh [VENV_DIR]   (default: .venv). Re-running reuses what is installed.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
venv=${1:-${VENV:-$here/.venv}}
py=${PYTHON:-python3.11}
command -v "$py" >/dev/null || py=python3
stamp="$venv/.fairseq-sigmoid-qe-deps-v1"
if [ ! -f "$stamp" ]; then
  rm -rf "$venv"
  "$py" -m venv "$venv"
  pip="$venv/bin/python -m pip install --quiet"
  $pip --upgrade pip
  $pip torch==2.13.0
  $pip numpy==2.4.6 cython==3.3.1 wheel setuptools
  $pip --no-cache-dir --no-build-isolation --no-deps fairseq-fixed==0.12.3.1
  $pip hydra-core==1.3.2 omegaconf==2.3.0 cffi regex sacrebleu==2.5.1 tqdm bitarray packaging \
       scikit-learn sentencepiece scipy pytest boostedprob==0.1.3 matplotlib==3.11.2
  touch "$stamp"
fi
"$venv/bin/python" -m pip install --quiet --no-deps --no-build-isolation -e "$here"
echo "environment ready: $venv"

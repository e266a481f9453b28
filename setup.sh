#!/usr/bin/env bash
# Create (or complete) a Python 3.11 virtual environment with torch 2.13.0 (CPU), fairseq and
# this plugin, from the dependency lists of pyproject.toml (its dependencies and its fairseq,
# test and plot extras).
# Usage: bash setup.sh [VENV_DIR]   (default: .venv). Re-running reuses what is installed;
# a directory this script did not create is never deleted.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
venv=${1:-${VENV:-$here/.venv}}
py=${PYTHON:-python3.11}
command -v "$py" >/dev/null || py=python3
if [ ! -e "$venv" ] || { [ -d "$venv" ] && [ -z "$(ls -A "$venv")" ]; }; then
  "$py" -m venv "$venv"
elif [ ! -x "$venv/bin/python" ]; then
  echo "setup.sh: error: $venv exists and is not a virtual environment; give another directory" >&2
  exit 1
fi
python=$venv/bin/python
TORCH_PIN=torch==2.13.0
stamp="$venv/.fairseq-sigmoid-qe-deps-$(cat "$here/setup.sh" "$here/pyproject.toml" | sha1sum | cut -c1-12)"
if [ ! -f "$stamp" ]; then
  # requirements GROUP...: pyproject.toml's lists ("dependencies" or an extra's name), one a line
  requirements() {
    "$python" - "$here/pyproject.toml" "$@" <<'PY'
import sys, tomllib
project = tomllib.load(open(sys.argv[1], "rb"))["project"]
for group in sys.argv[2:]:
    names = project["dependencies"] if group == "dependencies" else project["optional-dependencies"][group]
    print("\n".join(names))
PY
  }
  pip="$python -m pip install --quiet"
  $pip --upgrade pip
  # The exact CPU build this project is tested with, installed first (pyproject.toml states
  # the tested series, torch>=2.13,<2.14, for installs next to an existing torch).
  $pip "$TORCH_PIN"
  mapfile -t fairseq < <(requirements fairseq)
  fairseq_fixed=$(printf '%s\n' "${fairseq[@]}" | grep '^fairseq-fixed==')
  mapfile -t others < <(requirements dependencies fairseq test plot | grep -v '^fairseq-fixed==')
  # fairseq-fixed's build needs torch, numpy and cython (from the fairseq extra) in the venv;
  # its declared dependencies are wrong for 3.11 (see pyproject.toml).
  $pip "${others[@]}"
  $pip --no-cache-dir --no-build-isolation --no-deps "$fairseq_fixed"
  touch "$stamp"
fi
"$python" -m pip install --quiet --no-deps --no-build-isolation -e "$here"
echo "environment ready: $venv"

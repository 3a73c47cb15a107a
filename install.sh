#!/usr/bin/env bash
# Install everything into the current Python environment (a venv is recommended):
#   python3 -m venv .venv && . .venv/bin/activate && bash install.sh
set -euo pipefail
cd "$(dirname "$0")"
PY=${PYTHON:-python}
"$PY" -m pip install -q --upgrade pip
# visdom 0.2.4 ships only as an sdist whose setup.py imports pkg_resources, which
# setuptools 81+ removed: build it with an older setuptools and no build isolation.
"$PY" -m pip install -q 'setuptools<81' wheel
"$PY" -m pip install -q -r requirements.txt
"$PY" -m pip install -q --no-build-isolation 'visdom>=0.2.4'
"$PY" -c "import torch, torchvision, visdom, dominate; print('installed: torch', torch.__version__, '| torchvision', torchvision.__version__)"

#!/usr/bin/env bash
# Sets up everything this project needs, in one environment:
#   bash install.sh            into the active venv/conda env, else into ./.venv (created here)
#   bash install.sh --cpu      the same, with PyTorch's CPU-only wheels (no CUDA libraries)
#   bash install.sh --force    reinstall even when the environment is already up to date
# Every pip call holds constraints.txt (pip -c), so the setuptools range that both torch
# (>=77.0.3) and visdom's sdist (<81, pkg_resources) need is kept whatever pip resolves first.
set -euo pipefail
cd "$(dirname "$0")"

CPU_ONLY=0
FORCE=0
for arg in "$@"; do
  case "$arg" in
    --cpu) CPU_ONLY=1 ;;
    --force) FORCE=1 ;;
    -h|--help) sed -n '2,7p' "$0"; exit 0 ;;
    *) echo "install.sh: unknown option '$arg' (use --cpu, --force)" >&2; exit 2 ;;
  esac
done
# PyTorch publishes its CPU-only Linux wheels on its own index, not on the default one.
TORCH_CPU_INDEX=${TORCH_CPU_INDEX:-https://download.pytorch.org/whl/cpu}

PY=$(bash scripts/python_for_project.sh)
if [ "$PY" = ".venv/bin/python" ] && [ ! -x .venv/bin/python ]; then
  echo "install.sh: no environment is active: creating ./.venv"
  python3 -m venv .venv
fi

# Skip the work when this environment was set up from exactly these files and flags.
STAMP="$("$PY" -c 'import sys; print(sys.prefix)')/.pix2pix-install-stamp"
WANT=$(cat install.sh constraints.txt requirements/*.txt | sha256sum | cut -d' ' -f1)-cpu$CPU_ONLY
if [ "$FORCE" = 0 ] && [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$WANT" ] \
   && "$PY" -c "import torch, torchvision, visdom, dominate, tensorboard" 2>/dev/null; then
  echo "install.sh: $("$PY" -c 'import sys; print(sys.prefix)') is up to date"
  exit 0
fi

if [ "$CPU_ONLY" = 1 ] && ! "$PY" -c "import sys, urllib.request; urllib.request.urlopen(sys.argv[1] + '/torch/', timeout=15)" \
     "$TORCH_CPU_INDEX" 2>/dev/null; then
  echo "install.sh: --cpu: PyTorch's CPU wheel index $TORCH_CPU_INDEX cannot be reached" \
       "(set TORCH_CPU_INDEX to a mirror, or install without --cpu)" >&2
  exit 1
fi

START=$SECONDS
PIP=("$PY" -m pip install -q -c constraints.txt)
"$PY" -m pip install -q --upgrade pip
# First the build tools inside the constraint (this downgrades a setuptools >= 81 that is
# already there), then visdom can be built without isolation against them.
"${PIP[@]}" setuptools wheel
if [ "$CPU_ONLY" = 1 ]; then
  "${PIP[@]}" --extra-index-url "$TORCH_CPU_INDEX" torch torchvision
fi
"${PIP[@]}" -r requirements/core.txt -r requirements/test.txt -r requirements/quality.txt \
  -r requirements/serve.txt -r requirements/export.txt
"${PIP[@]}" --no-build-isolation visdom
"$PY" -c "import torch, torchvision, visdom, dominate, tensorboard; \
print('install.sh: torch', torch.__version__, '| torchvision', torchvision.__version__, \
'| CUDA' if torch.version.cuda else '| CPU-only build')"
echo "$WANT" > "$STAMP"
echo "install.sh: done in $((SECONDS - START)) s ($(du -sh "$("$PY" -c 'import sys; print(sys.prefix)')" | cut -f1) in the environment)"
